"""The training pages in the reader's language: the split's part names, the head's name among the settings
used, and the numbers of the charts and the epoch table written the locale's way (0,41 / 25 %)."""
from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file

from app.blueprints.training.exports import PART_NAMES
from app.extensions import db
from app.models import utcnow
from tests.training.test_pages import METRICS, make_run
from tests.training.test_thresholds import scored

PT, ES = {"Accept-Language": "pt-BR"}, {"Accept-Language": "es"}
ROOT = Path(__file__).resolve().parents[2]


def _text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def test_the_split_pages_part_buttons_are_translated(logged_in, make_dataset, pretend_translated):
    extracted = {message for _line, message, _comments, _context in
                 extract_from_file("python", ROOT / "app/blueprints/training/exports.py", keywords=DEFAULT_KEYWORDS)}
    assert set(PART_NAMES.values()) <= extracted  # `make messages` picks them up for the translators
    pretend_translated("pt_BR", {"train (learn from)": "treino (para aprender)",
                                 "test (only reported)": "teste (só relatado)"})
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, metrics=METRICS)
    page = _text(logged_in.get(f"/models/{run.id}/split?part=train", headers=PT))
    assert "treino (para aprender) (18)" in page and "teste (só relatado) (6)" in page
    assert "train (learn from)" not in page
    assert "train (learn from) (18)" in _text(logged_in.get(f"/models/{run.id}/split?part=train"))


HEAD_LABEL = re.compile(r'<tr><th scope="row">(?:Head|Cabeza)</th><td>([^<]*)</td>')


def test_the_head_is_named_not_shown_as_its_identifier(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    runs = {}
    for head, chosen in (("mlp", "mlp"), ("auto", "linear"), ("auto", "mlp"), ("linear", "linear")):
        run = make_run(dataset, logged_in.user, metrics={**METRICS, "head_choice": {"chosen": chosen}},
                       options={"mode": "quick", "head": head})
        run.mode = "quick"
        runs[head, chosen] = run
    db.session.commit()

    def shown(key, headers=None) -> str:
        page = _text(logged_in.get(f"/models/{runs[key].id}", headers=headers or {}))
        return HEAD_LABEL.search(page).group(1)

    assert shown(("mlp", "mlp")) == "MLP"  # was "mlp"
    assert shown(("auto", "mlp")) == "automatic → MLP"
    assert shown(("auto", "linear"), ES) == "automático → lineal"  # was "automático → linear"
    assert shown(("linear", "linear"), ES) == "Lineal"
    compare = _text(logged_in.get(f"/models/compare?a={runs['mlp', 'mlp'].id}&b={runs['auto', 'mlp'].id}"))
    assert "<td>MLP</td><td>automatic → MLP</td>" in compare and ">mlp<" not in compare


def _charts(page: str) -> str:
    return page[page.index('class="charts"'):page.index('small-print', page.index('class="charts"'))]


def test_charts_and_the_epoch_table_write_numbers_the_readers_way(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, metrics=METRICS)  # losses 1/epoch and 1.2/epoch: the axis ends at 1.32
    run.history = [{**row, "lr_head": 0.0003, "seconds": 1.25} for row in run.history]
    db.session.commit()
    english = _text(logged_in.get(f"/models/{run.id}"))
    assert ">0.33</text>" in _charts(english) and ">25%</text>" in _charts(english)
    assert all(cell in english for cell in ("<td>0.5000</td>", "<td>0.0003</td>", "<td>1.25</td>"))

    portuguese = _text(logged_in.get(f"/models/{run.id}", headers=PT))
    assert ">0,33</text>" in _charts(portuguese) and ">0.33</text>" not in _charts(portuguese)
    assert all(cell in portuguese for cell in ("<td>0,5000</td>", "<td>0,0003</td>", "<td>1,25</td>"))
    assert "<td>0.5000</td>" not in portuguese

    spanish = _text(logged_in.get(f"/models/{run.id}", headers=ES))
    assert ">25\xa0%</text>" in _charts(spanish) and ">25%</text>" not in _charts(spanish)  # as the page: "71 %"
    assert ">0,33</text>" in _charts(spanish) and "<td>0,5000</td>" in spanish


def test_the_threshold_chart_writes_percentages_the_readers_way(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 2, "blue": 2})
    run = scored(dataset, logged_in.user)
    page = _text(logged_in.get(f"/models/{run.id}", headers=ES))
    chart = page[page.index("threshold-chart"):page.index("</svg>", page.index("threshold-chart"))]
    assert ">25\xa0%</text>" in chart and ">25%</text>" not in chart
    assert "<title>Imágenes de validación respondidas</title>" in chart and "<title>Answered</title>" not in chart


def test_a_run_whose_export_does_not_match_says_why_through_its_stored_line(app, start_run, make_dataset, logged_in,
                                                                             monkeypatch, pretend_translated):
    """The ML library's reasons and phases reach the run's log as words lines (template + values): run.error
    and the API keep the English text, the page says them in the reader's language."""
    import copy

    import torch
    from flask_babel import force_locale

    from app.blueprints.training.results import failure_text
    from app.ml import export
    from app.models import TrainingRun
    from tests.conftest import run_jobs

    traced = export.export_torchscript

    def skewed(model, example, path):  # a TorchScript file of other weights: verify_exports raises ExportMismatch
        other = copy.deepcopy(model)
        with torch.no_grad():
            for weights in other.parameters():
                weights.add_(1.0)
        traced(other, example, path)

    monkeypatch.setattr(export, "export_torchscript", skewed)
    dataset = make_dataset(logged_in.user, {"red": 4, "blue": 4}, size=(16, 16))
    start_run(dataset.id, epochs="1", val_fraction="0", test_fraction="0.25")
    run_jobs(app)
    db.session.expire_all()
    run = db.session.scalars(db.select(TrainingRun)).one()
    template = "The %(export)s export does not reproduce the PyTorch model (max difference %(difference_sci)s)."
    assert run.status == "failed" and run.error.startswith("The TorchScript export does not reproduce the PyTorch")
    said = run.log[-1]
    assert (said["key"], said["values"]["export"], said["message"]) == (template, "TorchScript", run.error)
    keys = [entry.get("key") for entry in run.log]
    assert "Decoding images…" in keys and "Exporting TorchScript and ONNX…" in keys  # phases, as lines
    with app.test_request_context(), force_locale("en"):
        assert failure_text(run) == run.error
    pretend_translated("pt_BR", {template: "A exportação %(export)s difere do modelo PyTorch (%(difference_sci)s)."})
    page = _text(logged_in.get(f"/models/{run.id}", headers=PT))
    assert "A exportação TorchScript difere do modelo PyTorch" in page and "does not reproduce" not in page
    assert re.search(r"PyTorch \(\d,\d\de[-+]\d\d\)", page)  # the reader's decimal sign (run.error: 2.34e-01)


def test_the_charts_say_whose_curves_they_show_when_quick_mode_fits_two_heads(logged_in, make_dataset):
    """While quick mode fits its second head the charts show that head's curves; once it has finished they
    show the kept head's, which can be the other one: both moments say which head it is."""
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    fitting = make_run(dataset, logged_in.user, status="running", heartbeat_at=utcnow(), started_at=utcnow(),
                       options={"mode": "quick", "head": "auto"},
                       progress={"phase": "training", "stage": "MLP head", "epoch": 2, "epochs": 3, "fraction": 0.8})
    kept = make_run(dataset, logged_in.user, options={"mode": "quick", "head": "auto"},
                    metrics={**METRICS, "head_choice": {"chosen": "linear", "automatic": True}})
    chosen_by_user = make_run(dataset, logged_in.user, options={"mode": "quick", "head": "mlp"},
                              metrics={**METRICS, "head_choice": {"chosen": "mlp", "automatic": False}})
    for run in (fitting, kept, chosen_by_user):
        run.mode = "quick"
    db.session.commit()

    live = _text(logged_in.get(f"/models/{fitting.id}/progress", headers={"HX-Request": "true"}))
    assert "Curves of the head being fitted now: MLP head." in live
    assert "Curves of the head that was kept: Linear head." in _text(logged_in.get(f"/models/{kept.id}"))
    assert 'id="curves-caption"' not in _text(logged_in.get(f"/models/{chosen_by_user.id}"))
