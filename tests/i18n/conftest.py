"""The i18n tests reuse the training pages' dataset factory."""
from tests.training.conftest import make_dataset  # noqa: F401  (a fixture)
