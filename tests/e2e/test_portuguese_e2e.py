"""The whole flow in Brazilian Portuguese, as a browser whose language is pt-BR uses it: register → dataset →
zip upload → labeling by keyboard → quick training → results → trying the model → the header's switcher
(to Spanish and back, saved on the account). Screenshots go to the test's temporary folder."""
from __future__ import annotations

import re

from tests.e2e.conftest import colour_png, studio_zip
from tests.e2e.test_accounts_e2e import register


def test_whole_flow_in_portuguese(live_server, browser, tmp_path):
    base = live_server
    context = browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shoot(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    page.goto(base + "/login")
    assert page.get_attribute("html", "lang") == "pt-BR"
    assert page.is_visible("h1:text('Entrar')")
    shoot("01_entrar")

    register(page, base, "ana")
    page.wait_for_url(re.compile(r"/datasets$"))
    assert "Boas-vindas, ana!" in page.inner_text("#flashes")
    page.click("a:has-text('Crie seu primeiro conjunto de dados')")
    page.fill("input[name=name]", "Formigas <e> abelhas")
    shoot("02_novo_conjunto")
    page.click("button:has-text('Criar conjunto de dados')")
    page.wait_for_url(re.compile(r"/datasets/\d+$"), timeout=10_000)
    dataset_id = int(page.url.rsplit("/", 1)[1])
    assert page.inner_text("h1").startswith("Formigas <e> abelhas")  # the user's name, as typed

    page.set_input_files("input[name=files]", str(studio_zip(tmp_path / "cores.zip")))
    assert "1 arquivo escolhido" in page.inner_text("[data-drop] strong")  # the scripts speak Portuguese too
    page.click("[data-upload-button]")
    page.wait_for_selector("#imports [data-import-status=finished]", timeout=60_000)
    assert "19 imagens adicionadas" in page.inner_text("#imports")
    page.wait_for_selector("#summary .big-number:text('19')", timeout=10_000)
    shoot("03_conjunto")

    page.goto(f"{base}/datasets/{dataset_id}/label?filter=unlabeled")
    page.click("[data-label-form] .ds-actions button[data-class-key='1']")  # nothing selected yet
    assert "Selecione uma ou mais imagens primeiro" in page.inner_text("#flashes")
    page.locator("[data-tile]").first.click()
    with page.expect_response(lambda r: "/images/label" in r.url):
        page.keyboard.press("1")
    page.wait_for_selector("[data-toast]:has-text('Desfazer')", timeout=10_000)
    shoot("04_rotular")

    page.goto(f"{base}/datasets/{dataset_id}/train")
    assert page.is_visible("legend:has-text('Como treinar')")
    page.fill("input[name=name]", "primeira tentativa")
    shoot("05_treinar")
    page.click("button:has-text('Começar o treinamento')")
    page.wait_for_url(re.compile(r"/models/\d+$"), timeout=30_000)
    run_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector("#run-progress .badge-succeeded:has-text('concluído')", timeout=180_000)
    page.wait_for_selector(".results-head:has-text('Acertou')", timeout=30_000)
    assert page.is_visible("h2:has-text('Quais classes se confundem')")
    shoot("06_resultados")

    page.click("a:has-text('Experimente com suas imagens')")
    page.wait_for_url(f"{base}/models/{run_id}/try")
    page.set_input_files("#try-files", [{"name": "vermelho.png", "mimeType": "image/png",
                                         "buffer": colour_png((210, 40, 40), 99)}])
    page.wait_for_selector("#try-status:text('Pronto.')", timeout=60_000)
    assert re.search(r"red|blue|Não tenho certeza", page.inner_text("#try-results .result-body"))
    shoot("07_experimentar")

    page.click(".lang-switch button[value=es]")  # the header's switcher: saved on the account
    page.wait_for_url(f"{base}/models/{run_id}/try")
    assert page.get_attribute("html", "lang") == "es" and page.is_visible("h1:has-text('Probar')")
    page.goto(base + "/account")
    assert page.input_value("#lang") == "es"
    shoot("08_cuenta_es")
    page.select_option("#lang", "pt_BR")
    page.click("button:has-text('Guardar idioma')")
    page.wait_for_url(base + "/account")
    assert page.get_attribute("html", "lang") == "pt-BR" and page.is_visible("h1:has-text('Sua conta')")

    other = browser.new_context(locale="es-ES").new_page()  # another browser, asking for Spanish
    other.goto(base + "/login")
    assert other.get_attribute("html", "lang") == "es"
    other.fill("input[name=username]", "ana")
    other.fill("input[name=password]", "correct horse")
    other.click("button[type=submit]")
    other.wait_for_url(re.compile(r"/datasets$"))
    assert other.get_attribute("html", "lang") == "pt-BR"  # her saved choice wins over the browser
    assert len(list(shots.glob("*.png"))) == 8
    context.close()
    other.context.close()
