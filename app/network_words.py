"""The words of the network catalogue (app/ml/networks.py, a library that knows nothing of languages),
marked here for translation; pages show them with network_text(). tests/i18n checks this list against
the catalogue, so a network added there is also added here."""
from __future__ import annotations

from flask_babel import gettext

from app.i18n import N_

WORDS = (
    N_("not installed on this server — an admin can add it"),
    N_("Small CNN (from scratch)"),
    N_("Small ResNet (from scratch)"),
    N_("Small and fast, built in (works offline). The best default for everyday photos on a CPU."),
    N_("The fastest; designed for phones. Good when speed matters most or the dataset is huge."),
    N_("Small and accurate for its size; a little slower than EfficientNet-Lite0 on a CPU."),
    N_("The original prototype's network: classic, robust and simple; fine-tunes easily."),
    N_("A bigger classic: clearly more accurate than ResNet-18, about twice as slow."),
    N_("The most accurate here (modern design), and the slowest: for hard or unusual pictures, best with a GPU."),
    N_("A small plain convolutional network trained from nothing; for small, low-resolution images."),
    N_("A small residual network trained from nothing; usually a little better than Small CNN."),
)


def network_text(text: str | None) -> str:
    """A network's description, label or reason in the page's language (names like ResNet-18 stay)."""
    return gettext(text) if text in WORDS else (text or "")
