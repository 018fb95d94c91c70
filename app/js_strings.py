"""The words the browser scripts (app/static) show, translated for the page's language.

base.html puts js_catalog() into a <script type="application/json" id="i18n"> block; app.js's
studio.t(key, {name: value}) reads it. `{name}` marks a value the script fills in. A plural entry gives
the singular and plural msgids; the script picks the form with Intl.PluralRules for the count `n` (the
three languages have two forms: "one", and every other count). A text with a count in it is a plural
entry, its count named {n} and given to studio.t as a number (not formatted: t formats it).
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l, ngettext

SIMPLE = {
    "request_failed": _l("The server could not complete that request ({status})."),
    "select_first": _l("Select one or more images first (click them, or press a to select all on this page)."),
    "not_sure": _l("Not sure — best guess {name} ({confidence})"),
    "thinking": _l("Thinking…"),
    "refused": _l("The server refused the images."),
    "done": _l("Done."),
    "unreachable": _l("Could not reach the server."),
    "copied": _l("Copied"),
    "upload_progress": _l("Upload progress"),
    "too_large": _l("Too large for one upload."),
    "upload_failed": _l("Upload failed ({status})."),
    "network_error": _l("network error"),
    "sending_one": _l("Sending {name}…"),
    "sending_files": _l("Sending files {first}–{last} of {total}…"),
    "drop_more": _l("Drop more images or a .zip here"),
    "choose_first": _l("Choose images or a .zip first: drop them on the box above, or click it to pick files."),
    "no_preview": _l("No preview"),
    "no_preview_for": _l("No preview for {name}"),
    # "Why?" on the "Try it" page: which parts of a picture an answer rests on (the explain API's map).
    "why": _l("Why?"),
    "why_looking": _l("Looking at which parts of the picture mattered…"),
    "why_legend": _l("Brighter areas mattered most for ‘{name}’."),
    "why_flat": _l("No single part of the picture changed the answer ‘{name}’ much."),
    "why_crop": _l("The model looks at the middle of the picture, shown here."),
    "why_failed": _l("This answer could not be explained."),
    # A browser notification when a watched training ends (the run page, once the user allowed them).
    "run_succeeded": _l("Training finished: {name}"),
    "run_failed": _l("Training failed: {name}"),
    "run_cancelled": _l("Training cancelled: {name}"),
    # The API's stable error codes, said in the page's language on the "Try it" page.
    "code_bad_image": _l("This file is not an image we can read (use JPEG, PNG, WebP, BMP or GIF)."),
    "code_over_pixel_budget": _l("Too many pixels in one go: send fewer or smaller images at once."),
    "code_not_ready": _l("This model cannot answer yet: its training has not finished."),
    "code_unknown_model": _l("This model does not exist, or you do not have access to it."),
    "code_too_many_files": _l("Too many files at once: send fewer images per try."),
    "code_rate_limited": _l("Too many images in a short time. Wait a moment and try again."),
    "code_too_large": _l("The upload is too large. Send fewer or smaller files at once."),
    # The camera (camera.js): taking photos into a dataset, and live answers on the "Try it" page.
    "cam_insecure": _l("The camera only works on a secure page. Open the studio with https://, or as "
                       "http://localhost on the computer it runs on, then press Start camera again."),
    "cam_unsupported": _l("This browser cannot use a camera. Try a recent Chrome, Firefox, Edge or Safari."),
    "cam_denied": _l("Camera access was refused. Allow the camera for this site (the camera icon in the "
                     "address bar, or the browser's site settings), then press Start camera again."),
    "cam_none": _l("No camera was found. Connect one, then press Start camera again."),
    "cam_busy": _l("The camera is busy: another app or browser tab is using it. Close that, then press "
                   "Start camera again."),
    "cam_failed": _l("The camera could not be started ({name})."),
    "cam_starting": _l("Starting the camera… (allow it if the browser asks)"),
    "cam_on": _l("Camera on."),
    "cam_off": _l("Camera off."),
    "cam_hidden": _l("The camera was stopped because the page was hidden. Press Start camera to go on."),
    "cam_not_ready": _l("Wait a moment: the camera is still starting."),
    "cam_recording": _l("Recording: keep holding…"),
    "cam_retrying": _l("Too many photos in a short time: waiting, then sending them again…"),
    "cam_send_failed": _l("Photos could not be sent ({status})."),
    "cam_answer": _l("{name} ({confidence})"),
    "cam_confidence": _l("Confidence: {confidence}"),
    "cam_looking": _l("Looking…"),
}


def PN_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a plural pair for extraction (babel.cfg's keyword PN_:1,2); translated in js_catalog()."""
    return singular, plural


# key -> (singular, plural); {n} is the count.
PLURAL = {
    "classifying": PN_("Classifying {n} image…", "Classifying {n} images…"),
    "duplicates": PN_("{n} duplicate skipped", "{n} duplicates skipped"),
    "zips": PN_("{n} zip handed to a background import (below)", "{n} zips handed to a background import (below)"),
    "files_sent": PN_("Done: {n} file sent.", "Done: {n} files sent."),
    "images_added": PN_("{n} image added.", "{n} images added."),
    "nothing_added": PN_("Nothing was added: {n} file could not be used (why: below).",
                         "Nothing was added: {n} files could not be used (why: below)."),
    "nothing_new": PN_("Nothing was added: {n} file is already in this dataset.",
                       "Nothing was added: {n} files are already in this dataset."),
    "zips_background": PN_("The zip is imported in the background: see below.",
                          "The zips are imported in the background: see below."),
    "files_chosen": PN_("{n} file chosen", "{n} files chosen"),
    "click_upload": PN_("Click Upload to send it.", "Click Upload to send them."),
    "added": PN_("{n} image added", "{n} images added"),
    "unusable": PN_("{n} file could not be used", "{n} files could not be used"),
    "stopped": PN_("Stopped: {sent} of {n} file sent.", "Stopped: {sent} of {n} files sent."),
    "cam_taken": PN_("{n} photo taken", "{n} photos taken"),
    "cam_sent": PN_("{n} sent", "{n} sent"),
    "cam_waiting": PN_("{n} waiting to be sent", "{n} waiting to be sent"),
    # The classes page's "Merge two classes": the question before merging names the classes chosen.
    "merge_confirm": PN_("Move the {n} image of “{name}” into “{into}”, then delete the class “{name}”?",
                         "Move the {n} images of “{name}” into “{into}”, then delete the class “{name}”?"),
    "threshold_none": PN_("At {threshold}: answers none of the {n} validation image; says 'not sure' for it.",
                          "At {threshold}: answers none of the {n} validation images; says 'not sure' "
                          "for all of them."),
    "threshold_some": PN_("At {threshold}: answers {answered} of {n} validation image, {correct} of those "
                         "correct; says 'not sure' for {rest}.",
                         "At {threshold}: answers {answered} of {n} validation images, {correct} of those "
                         "correct; says 'not sure' for {rest}."),
}


def js_catalog() -> dict:
    """Every script string in the current language; a plural entry as [form for one, form for more]."""
    catalog: dict = {key: str(text) for key, text in SIMPLE.items()}
    for key, (singular, plural) in PLURAL.items():
        catalog[key] = [ngettext(singular, plural, 1), ngettext(singular, plural, 2)]
    return catalog

