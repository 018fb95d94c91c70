"""The pages in each language: a few key strings per page, plural forms, locale-formatted numbers and
dates, the scripts' catalog, and the user's own text (class, dataset and model names) left as typed."""
from __future__ import annotations

import html as html_lib
import json
import re
from datetime import datetime

import pytest

from tests.training.test_pages import METRICS, make_run

LANGS = {"en": "en", "pt_BR": "pt-BR", "es": "es"}
PAGES = {  # page -> language -> strings that must be on it
    "register": {"en": ["Create an account", "Username", "Repeat password"],
                 "pt_BR": ["Criar uma conta", "Nome de usuário", "Repita a senha"],
                 "es": ["Crear una cuenta", "Nombre de usuario", "Repite la contraseña"]},
    "login": {"en": ["Log in", "No account yet?"], "pt_BR": ["Entrar", "Ainda não tem conta?"],
              "es": ["Iniciar sesión", "¿Aún no tienes cuenta?"]},
    "dataset": {"en": ["What is in this dataset", "Add images", "Overview"],
                "pt_BR": ["O que há neste conjunto de dados", "Adicionar imagens", "Visão geral"],
                "es": ["Qué hay en este conjunto de datos", "Añadir imágenes", "Resumen"]},
    "train": {"en": ["How to train", "Start training", "Advanced settings"],
              "pt_BR": ["Como treinar", "Começar o treinamento", "Configurações avançadas"],
              "es": ["Cómo entrenar", "Empezar el entrenamiento", "Ajustes avanzados"]},
    "results": {"en": ["Which classes get mixed up", "Settings used", "test images"],
                "pt_BR": ["Quais classes se confundem", "Configurações usadas", "imagens de teste"],
                "es": ["Qué clases se confunden", "Ajustes usados", "imágenes de prueba"]},
}
NAME = "<i>Ants & bees</i>"  # the user's text: shown as typed, escaped, never translated


@pytest.fixture
def world(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 12, "blue": 10}, name=NAME)
    run = make_run(dataset, logged_in.user, metrics=METRICS, name="Meu modelo <b>1</b>")
    return {"register": "/register", "login": "/login", "dataset": f"/datasets/{dataset.id}",
            "train": f"/datasets/{dataset.id}/train", "results": f"/models/{run.id}"}


def text_of(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("lang", LANGS)
def test_key_pages_render_in_each_language(app, logged_in, world, lang):
    anonymous = app.test_client()
    for page, strings in PAGES.items():
        client = anonymous if page in ("register", "login") else logged_in
        response = client.get(world[page], headers={"Accept-Language": LANGS[lang]})
        assert response.status_code == 200, page
        body = text_of(response)
        assert f'<html lang="{LANGS[lang]}">' in body
        missing = [s for s in strings[lang] if s not in body]
        assert missing == [], (page, lang)
        if lang != "en":  # and the English words are gone
            assert [s for s in strings["en"] if f">{s}<" in body and s not in strings[lang]] == [], page


@pytest.mark.parametrize("lang", ("pt_BR", "es"))
def test_the_users_names_stay_as_typed_and_escaped(logged_in, world, lang):
    for page in ("dataset", "train", "results"):
        raw = logged_in.get(world[page], headers={"Accept-Language": LANGS[lang]}).get_data(as_text=True)
        assert NAME not in raw and "<b>1</b>" not in raw  # never markup
        if page != "results":
            assert "&lt;i&gt;Ants &amp; bees&lt;/i&gt;" in raw, page
    dataset = logged_in.get(world["dataset"], headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert ">red</a>" in dataset and ">blue</a>" in dataset  # class names are not translated
    results = logged_in.get(world["results"], headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Meu modelo &lt;b&gt;1&lt;/b&gt;" in results and ">cat<" in results


def test_plural_forms_follow_each_language(app):
    from flask_babel import force_locale

    from app.i18n import ngettext

    cases = {"en": {0: "0 images", 1: "1 image", 2: "2 images", 12000: "12,000 images"},
             "pt_BR": {0: "0 imagem", 1: "1 imagem", 2: "2 imagens", 12000: "12.000 imagens"},
             "es": {0: "0 imágenes", 1: "1 imagen", 2: "2 imágenes", 12000: "12.000 imágenes"}}
    with app.test_request_context("/"):
        for lang, expected in cases.items():
            with force_locale(lang):
                got = {n: ngettext("%(num)s image", "%(num)s images", n) for n in expected}
            assert got == expected, lang


def test_plural_forms_on_a_page(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 12, "blue": 1})
    body = text_of(logged_in.get(f"/datasets/{dataset.id}/classes", headers={"Accept-Language": "pt-BR"}))
    assert "12 imagens" in body and "1 imagem" in body  # the classes' counts: red 12, blue 1
    body = text_of(logged_in.get(f"/datasets/{dataset.id}/classes", headers={"Accept-Language": "es"}))
    assert "12 imágenes" in body and "1 imagen" in body


def test_numbers_percentages_and_dates_in_the_locales_way(app):
    from flask_babel import force_locale

    from app.i18n import format_number, format_percent, format_when

    when = datetime(2026, 11, 26, 17, 5)
    expected = {"en": ("12,345.5", "91.3%", "11/26/26"), "pt_BR": ("12.345,5", "91,3%", "26/11/2026"),
                "es": ("12.345,5", "91,3\xa0%", "26/11/26")}
    with app.test_request_context("/"):
        for lang, (number, percent, date) in expected.items():
            with force_locale(lang):
                assert format_number(12345.5) == number
                assert format_percent(0.913, 1) == percent
                assert date in format_when(when)
                assert format_percent(0.6, 1, trim=True).startswith("60")


def test_results_page_formats_its_figures_for_the_locale(logged_in, world):
    body = text_of(logged_in.get(world["results"], headers={"Accept-Language": "es"}))
    assert "75\xa0%" in body  # accuracy 0.75, Spanish percent sign spacing
    body = text_of(logged_in.get(world["results"], headers={"Accept-Language": "pt-BR"}))
    assert re.search(r">\s*75%\s*<", body) and "0,8" in body  # the F1 of "cat", with a decimal comma


def test_scripts_get_the_catalog_of_the_page_language(client):
    page = client.get("/login", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    raw = re.search(r'<script type="application/json" id="i18n">(.*?)</script>', page, re.S).group(1)
    catalog = json.loads(raw)
    assert catalog["thinking"] == "Pensando…"
    assert catalog["files_chosen"] == ["{n} arquivo escolhido", "{n} arquivos escolhidos"]
    english = json.loads(re.search(r'id="i18n">(.*?)</script>', client.get("/login").get_data(as_text=True),
                                   re.S).group(1))
    assert english["thinking"] == "Thinking…" and set(english) == set(catalog)


def test_flash_and_form_errors_in_the_users_language(client, make_user):
    make_user("alice")
    response = client.post("/login", data={"username": "alice", "password": "wrong one"},
                           headers={"Accept-Language": "es"})
    assert "Nombre de usuario o contraseña incorrectos." in text_of(response)
    response = client.post("/register", data={"username": "bob", "password": "x", "confirm": "y"},
                           headers={"Accept-Language": "pt-BR"})
    body = text_of(response)
    assert response.status_code == 422 and "As senhas são diferentes." in body and "Use pelo menos" in body


def test_what_a_job_stored_in_english_is_shown_in_the_users_language(logged_in, make_dataset):
    from app.blueprints.training.lifecycle import DEAD_WORKER_REASON

    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, status="failed", error=DEAD_WORKER_REASON)
    body = text_of(logged_in.get(f"/models/{run.id}", headers={"Accept-Language": "pt-BR"}))
    assert "O worker que rodava este treinamento parou de repente" in body and DEAD_WORKER_REASON not in body
    other = make_run(dataset, logged_in.user, status="failed", error="ValueError: something only English")
    assert "something only English" in text_of(logged_in.get(f"/models/{other.id}",
                                                             headers={"Accept-Language": "es"}))


def test_the_run_log_is_shown_in_the_users_language_and_stored_in_english(logged_in, make_dataset):
    """Log lines with values in them (epochs, accuracies, who queued or cancelled) keep their English
    text for the API and are shown translated, numbers written the locale's way."""
    from app.blueprints.training import lifecycle
    from app.extensions import db
    from app.ml.words import N_
    from app.ml.words import line as phase_line

    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, status="running", heartbeat_at=datetime.utcnow())
    lines = [lifecycle.epoch_line({"epoch": 3, "epochs": 10, "val_acc": 0.8125, "data_wait": 1.25}),
             lifecycle.epoch_line({"epoch": 2, "epochs": 40, "train_acc": 0.5, "stage": "MLP head"}),
             {"message": "Stopped early: no improvement for 5 epochs"}]  # the ML library's words stay English
    for line in lines + [phase_line(N_("Decoding images…"))]:  # as the ML library sends its phases
        lifecycle.append_log(run, line if isinstance(line, dict) else {"message": line})
    db.session.commit()
    assert [entry["message"] for entry in run.log][:2] == [
        "Epoch 3/10: validation accuracy 81% (waited 1.2 s for images)",
        "MLP head, epoch 2/40: training accuracy 50%"]
    body = text_of(logged_in.get(f"/models/{run.id}", headers={"Accept-Language": "pt-BR"}))
    assert "Época 3/10: acertos na validação 81% (esperou 1,2 s pelas imagens)" in body
    assert "Cabeça MLP, época 2/40: acertos no treino 50%" in body
    assert "Stopped early: no improvement for 5 epochs" in body
    spanish = text_of(logged_in.get(f"/models/{run.id}", headers={"Accept-Language": "es"}))
    assert "Época 3/10: aciertos en validación 81\u00a0% (esperó 1,2 s por las imágenes)" in spanish  # Babel's es


def test_why_training_stopped_and_which_head_won_in_the_users_language(logged_in, make_dataset):
    """The ML library's own sentences (early stop, quick mode's head choice) reach the log and the
    results page in the reader's language; the English text stays for the API."""
    import torch

    from app.blueprints.training import lifecycle
    from app.extensions import db
    from app.ml.loop import LoopResult, _stop_line
    from app.ml.options import TrainOptions
    from app.ml.progress import Hooks, ProgressReporter
    from app.ml.quick import HeadFit, choose_head

    def fit(kind, score):
        return HeadFit(kind, torch.nn.Identity(), LoopResult(best_score=score, best_val_acc=score, best_epoch=4), 1.0)

    _, choice = choose_head([fit("linear", 0.88), fit("mlp", 0.9125)], has_val=True, measure="accuracy")
    assert choice["reason"] == "MLP head chosen automatically: validation accuracy 91.2% beats 88.0% for linear."
    options = TrainOptions.from_dict({"architecture": "small_cnn", "mode": "scratch", "epochs": 60,
                                      "early_stopping_patience": 5})
    stop_line = _stop_line(LoopResult(best_score=0.8125, best_epoch=3), options, 8, 60)  # as run_epochs makes it
    notes = []
    reporter = ProgressReporter(Hooks(progress=notes.append), {"training": 1.0}, 60)
    reporter.start_stage("MLP head", 1, 2)
    reporter.note(stop_line)
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, metrics={**METRICS, "head_choice": choice, "stop_line": stop_line,
                                                    "stop_reason": stop_line["message"], "best_epoch": 3})
    log = lifecycle.RunReporter.__new__(lifecycle.RunReporter)  # the worker's reporter, without its run
    log.pending_log, log.unlogged_epoch, log.flush = [], None, lambda *a: None
    log(notes[-1])
    for line in log.pending_log + [choice["reason_line"]]:
        lifecycle.append_log(run, line)
    db.session.commit()
    assert run.log[0]["message"].startswith("MLP head: Stopped early after epoch 8 of 60: validation accuracy")
    body = text_of(logged_in.get(f"/models/{run.id}", headers={"Accept-Language": "pt-BR"}))
    assert ("Cabeça MLP: Parou cedo depois da época 8 de 60: a acurácia na validação não melhorava havia 5 épocas"
            in body)
    assert "a melhor foi 81,2% na época 3" in body
    assert "Cabeça MLP escolhida automaticamente: acurácia na validação de 91,2%, contra 88,0% da linear." in body
    assert "Stopped early" not in body and "chosen automatically" not in body


def test_an_imports_unusable_files_are_listed_in_the_users_language(app, logged_in, make_dataset):
    """The import job has no request, so it stores each file's reason in English with its template; the
    import page shows it in the reader's language, the status document in English."""
    from tests.conftest import run_jobs
    from tests.datasets.conftest import make_zip, png, upload

    dataset = make_dataset(logged_in.user, {"red": 1})
    entries = {"cats/0.png": png(0), "junk/notes.txt": b"not an image", "cats/empty.png": b""}
    started = upload(logged_in, dataset.id, [("pets.zip", make_zip(entries))]).json["import"]
    run_jobs(app)
    done = logged_in.get(started["status_url"]).json
    assert {e["message"] for e in done["errors"]} == {
        "This is not an image we can read (use JPEG, PNG, WebP, BMP or GIF).", "The file is empty (0 bytes)."}
    page = text_of(logged_in.get(done["page_url"], headers={"Accept-Language": "pt-BR"}))
    assert "Esta não é uma imagem que conseguimos ler (use JPEG, PNG, WebP, BMP ou GIF)." in page
    assert "O arquivo está vazio (0 bytes)." in page
    assert "This is not an image we can read" not in page and "The file is empty" not in page


def test_a_running_health_check_counts_in_the_users_language(logged_in, make_dataset):
    from app.blueprints.datasets.health.services import Progress, start_health_check

    dataset = make_dataset(logged_in.user, {"red": 3})
    start_health_check(dataset.id)  # queued (its job waits: no worker runs here); the job would report:
    Progress(dataset.id)(stored_line_of("Looking at every image: %(done)s of %(total)s", done=1200, total=5000),
                               0.3, force=True)
    page = text_of(logged_in.get(f"/datasets/{dataset.id}/health", headers={"Accept-Language": "pt-BR"}))
    assert "Olhando cada imagem: 1.200 de 5.000" in page


def stored_line_of(template: str, **values) -> dict:
    from app.i18n import stored_line

    return stored_line(template, **values)


def test_why_an_import_stopped_is_shown_in_the_users_language(app, logged_in, make_dataset):
    """Cancelled while it waited: the counts sentence with its plurals, in the reader's language; the
    status document keeps the English text."""
    from app.blueprints.datasets.images.imports import cancel_import
    from app.models import Dataset
    from tests.datasets.conftest import make_zip, png, upload

    dataset = make_dataset(logged_in.user, {"red": 1})
    entries = {f"cats/{i}.png": png(i) for i in range(3)}
    started = upload(logged_in, dataset.id, [("pets.zip", make_zip(entries))]).json["import"]
    cancel_import(logged_in.user, db_get(Dataset, dataset.id), started["id"])
    done = logged_in.get(started["status_url"]).json
    assert done["message"] == ("Cancelled after 0 of 3 files. The 0 images added before were kept; "
                               "the other 3 files were not imported.")
    page = text_of(logged_in.get(done["page_url"], headers={"Accept-Language": "pt-BR"}))
    assert ("Cancelado depois de 0 de 3 arquivos. 0 imagem adicionada antes foi mantida; "  # CLDR pt: 0 is "one"
            "os outros 3 arquivos não foram importados.") in page


def db_get(model, key):
    from app.extensions import db

    return db.session.get(model, key)


def test_the_train_forms_rule_errors_in_the_users_language(logged_in, make_dataset):
    """The option rules live in the ML library (English, for the API and logs); the form says them in
    the reader's language, each on its field."""
    dataset = make_dataset(logged_in.user, {"red": 6, "blue": 6})
    response = logged_in.post(f"/datasets/{dataset.id}/train", headers={"Accept-Language": "pt-BR"},
                              data={"name": "x", "architecture": "efficientnet_lite0", "mode": "quick",
                                    "epochs": "0", "lr": "-1"})
    body = text_of(response)
    assert response.status_code == 422
    assert "As épocas precisam estar entre 1 e 1000." in body
    assert "A taxa de aprendizado precisa ser maior que 0 e no máximo 10." in body
    assert "Epochs must be" not in body


def test_why_a_run_failed_is_said_in_the_users_language_and_kept_english(logged_in, make_dataset):
    """The ML library's reasons (a network not installed here) go to the run's log as lines: the page says
    them in the reader's language, run.error (and the API) keep the English text."""
    from app.blueprints.training.lifecycle import finish_failed
    from app.extensions import db
    from app.ml.errors import ArchitectureUnavailable
    from app.ml.words import N_

    dataset = make_dataset(logged_in.user, {"red": 6, "blue": 6})
    run = make_run(dataset, logged_in.user, status="running")
    finish_failed(run, ArchitectureUnavailable.because(N_("%(network)s is not installed on this server."),
                                                       network="ResNet-18"))
    db.session.expire_all()
    assert db.session.get(type(run), run.id).error == "ResNet-18 is not installed on this server."
    body = text_of(logged_in.get(f"/models/{run.id}", headers={"Accept-Language": "es"}))
    assert "ResNet-18 no está instalada en este servidor." in body
    assert "is not installed" not in body
