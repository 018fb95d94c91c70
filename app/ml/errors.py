"""Exceptions raised by the ML library. Messages are plain English, safe to show to users."""


class MLError(Exception):
    """Base class for every error raised on purpose by app.ml. Made with because(), it also carries its
    sentence as an app.ml.words line (`line`), which a page shows in the reader's language."""

    line: dict | None = None

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    @classmethod
    def because(cls, template: str, **values) -> "MLError":
        """The error from an N_-marked template and its values (the message is the English text)."""
        from .words import line

        return cls.saying(line(template, **values))

    @classmethod
    def saying(cls, said: dict) -> "MLError":
        """The error from an app.ml.words line (or several joined: words.joined); its English text is the
        message."""
        err = cls._of(said["message"])
        err.line = said
        return err

    @classmethod
    def _of(cls, message: str) -> "MLError":
        return cls(message)


class UnknownArchitecture(MLError, KeyError):
    """No architecture is registered under that name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class ArchitectureUnavailable(MLError):
    """The architecture is known but cannot be used here (e.g. its weights are missing)."""

    @property
    def reason(self) -> str:
        return self.message


class WeightsError(MLError):
    """Pretrained weights could not be fetched, or a file is not the right weights (wrong hash,
    truncated, does not load into the architecture). Nothing is installed when this is raised."""


class InvalidOptions(MLError, ValueError):
    """Training options that cannot be used together or are out of range. `fields` maps each option at
    fault to its message (all of them at once, for forms that mark every field); `lines` the same as
    app.ml.words lines, which a page shows in the reader's language."""

    def __init__(self, message: str, fields: dict[str, str] | None = None, lines: dict[str, dict] | None = None):
        super().__init__(message)
        self.fields = dict(fields or {})
        self.lines = dict(lines or {})


class NotTrainable(MLError, ValueError):
    """The data cannot be trained on (e.g. fewer than two classes with images)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)

    @classmethod
    def _of(cls, message: str) -> "NotTrainable":
        return cls([message])


class TrainingCancelled(MLError):
    """should_cancel() returned True; training stopped cleanly."""


class ExportMismatch(MLError):
    """An exported model does not reproduce the PyTorch model's outputs."""


class BadImage(MLError, ValueError):
    """The uploaded bytes are not a usable image."""
