"""Image routes: upload, import progress and cancel, the labeling grid, bulk label/delete, image files and
thumbnails, export."""
from flask import Response, flash, jsonify, redirect, render_template, request, send_file, stream_with_context, url_for
from flask_login import current_user, login_required
from flask_babel import gettext as _

from app.i18n import ngettext, stored_text
from app.access import get_dataset_for
from app.blueprints.datasets.context import page_context
from app.blueprints.datasets.images import bp
from app.blueprints.datasets.images import imports as import_service
from app.blueprints.datasets.images.exports import export_zip, zip_filename
from app.blueprints.datasets.images.intake import clean_filename
from app.blueprints.datasets.images.results import ERROR
from app.blueprints.datasets.images import undo
from app.blueprints.datasets.images.csv_labels import label_from_csv
from app.blueprints.datasets.images.services import (
    delete_undoably, get_image, grid_args, image_page, label_undoably, parse_ids,
)
from app.blueprints.datasets.images.uploads import label_field, upload_files
from app.errors import DomainError, NotFound, ValidationError
from app.ids import parse_id
from app.rate_limits import limit_by_user
from app.rendering import render_page, wants_partial
from app.filestore import image_key, thumb_key
from app.request_limits import allow_large_upload
from app.storage import attachment_headers, get_storage


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@bp.route("/datasets/<int:dataset_id>/upload", methods=["POST"])
@allow_large_upload
@login_required
@limit_by_user("RATELIMIT_UPLOAD", scope="upload")  # one budget with the API's uploads
def upload_images(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    files = [(f.filename or "", f.stream) for f in request.files.getlist("files") if f.filename]
    upload = upload_files(dataset.id, current_user.id, files, label_field(request.form.get("label_id")))
    if _wants_json():
        return jsonify(upload.to_json()), 202 if upload.imports else 200
    if request.htmx:
        return render_template("images/_upload_results.html", upload=upload, **page_context(dataset))
    results = upload.results
    flash(upload.summary, "success" if (results or upload.imports) and all(r.status != ERROR for r in results)
          else "warning")
    for r in [r for r in results if r.status == ERROR][:10]:
        flash(f"{r.filename}: {r.message}", "error")
    return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id))


@bp.route("/datasets/<int:dataset_id>/labels/import", methods=["POST"])
@login_required
@limit_by_user("RATELIMIT_UPLOAD", scope="upload")
def import_labels(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValidationError(_("Choose a CSV file of labels."))
        started = label_from_csv(dataset.id, current_user.id, upload.filename, upload.stream)
    except DomainError as err:
        return _labels_refused(dataset, err)
    if _wants_json():
        return (jsonify({"import": import_service.import_json(started.imp)}), 202) if started.imp else \
            jsonify({**started.result.counts(), "message": started.result.line()["message"]})
    if started.imp:
        flash(_("The labels are being applied in the background."), "success")
        return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id))
    flash(stored_text(started.result.line()), "success" if started.result.labeled else "warning")
    return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id, undo=started.result.undo_id))


def _labels_refused(dataset, err: DomainError):
    """A refused CSV: the page's form comes back to the dataset page with the reason, as the upload
    form's errors do; JSON and htmx callers keep the error status."""
    if _wants_json() or request.htmx:
        return _bulk_error(err)
    flash(err.message, "error")
    return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id))


@bp.route("/datasets/<int:dataset_id>/imports/<int:import_id>")
@login_required
def show_import(dataset_id: int, import_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    imp = import_service.view_import(dataset.id, import_id)
    return render_page("images/import.html", "images/_import_progress.html", imp=imp, **page_context(dataset))


@bp.route("/datasets/<int:dataset_id>/imports/<int:import_id>/status")
@login_required
def import_status(dataset_id: int, import_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    return jsonify(import_service.import_json(import_service.view_import(dataset.id, import_id)))


@bp.route("/datasets/<int:dataset_id>/imports/<int:import_id>/cancel", methods=["POST"])
@login_required
def cancel_import(dataset_id: int, import_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    imp = import_service.cancel_import(current_user, dataset, import_id)
    if _wants_json():
        return jsonify(import_service.import_json(imp))
    if request.htmx:
        return render_template("images/_import_progress.html", imp=imp, **page_context(dataset))
    flash(_("The import is stopping; the images it added so far are kept."), "success")
    return redirect(url_for("datasets.images.show_import", dataset_id=dataset.id, import_id=imp.id))


def _grid_context(dataset, values) -> dict:
    grid = image_page(dataset.id, **grid_args(values))
    totals = None if grid.q else (grid.counts, grid.unlabeled)  # with a search the grid counts its matches
    return dict(grid=grid, counts=grid.counts, unlabeled=grid.unlabeled, **page_context(dataset, totals))


@bp.route("/datasets/<int:dataset_id>/label")
@login_required
def label_images(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    ctx = _grid_context(dataset, request.args)
    undo_id = parse_id(request.args.get("undo"))  # after a bulk action without JavaScript
    return render_page("images/label.html", "images/_image_grid.html", oob=wants_partial(), undo_id=undo_id,
                       **ctx)


def _after_bulk(dataset, message: str, undo_id: int | None = None):
    """Re-render the grid where the user was, plus the class counts out-of-band, with a toast that
    offers to undo the action."""
    if not request.htmx:
        flash(message, "success")
        where = {k: request.form[k] for k in ("filter", "q", "before", "page") if request.form.get(k)}
        return redirect(url_for("datasets.images.label_images", dataset_id=dataset.id, undo=undo_id, **where))
    return render_template("images/_image_grid.html", oob=True, message=message, undo_id=undo_id,
                           **_grid_context(dataset, request.form))


def _bulk_error(err: DomainError):
    """For htmx bulk actions show the message in the flash area instead of replacing the grid."""
    if not request.htmx:
        raise err
    html = render_template("_error_fragment.html", message=err.message)
    return html, err.status, {"HX-Retarget": "#flashes", "HX-Reswap": "innerHTML"}


@bp.route("/datasets/<int:dataset_id>/images/label", methods=["POST"])
@login_required
def label_selected(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    label_id = request.form.get("label_id", "")
    try:
        ids = parse_ids(request.form.getlist("image_ids"))
        if label_id and parse_id(label_id) is None:
            raise NotFound(_("This class does not exist in this dataset."))
        count, undo_id = label_undoably(dataset.id, ids, parse_id(label_id), current_user.id)
    except DomainError as err:
        return _bulk_error(err)
    text = (ngettext("%(num)s image labeled.", "%(num)s images labeled.", count) if label_id.isdigit() else
            ngettext("%(num)s image unlabeled.", "%(num)s images unlabeled.", count))
    return _after_bulk(dataset, text, undo_id)


@bp.route("/datasets/<int:dataset_id>/images/delete", methods=["POST"])
@login_required
def delete_selected(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    try:
        count, undo_id = delete_undoably(dataset.id, parse_ids(request.form.getlist("image_ids")), current_user.id)
    except DomainError as err:
        return _bulk_error(err)
    return _after_bulk(dataset, ngettext("%(num)s image deleted.", "%(num)s images deleted.", count), undo_id)


@bp.route("/datasets/<int:dataset_id>/images/undo/<int:undo_id>", methods=["POST"])
@login_required
def undo_action(dataset_id: int, undo_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    try:
        message = undo.undo(dataset.id, current_user.id, undo_id)
    except DomainError as err:
        return _bulk_error(err)
    back = request.form.get("next", "")
    page = f"/datasets/{dataset.id}"
    if (back == page or back.startswith(page + "/")) and not request.htmx:  # its page, health, suggestions...
        flash(message, "success")
        return redirect(back)
    return _after_bulk(dataset, message)


@bp.route("/datasets/<int:dataset_id>/images/<int:image_id>/file")
@login_required
def image_file(dataset_id: int, image_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    image = get_image(dataset.id, image_id)
    path = get_storage().local_path(image_key(image.sha256))  # with a bucket: this server's cached copy
    return _private(send_file(path, mimetype=f"image/{image.format.lower()}",
                              download_name=clean_filename(image.filename), max_age=86400, etag=image.sha256))


@bp.route("/datasets/<int:dataset_id>/images/<int:image_id>/thumb")
@login_required
def image_thumb(dataset_id: int, image_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    image = get_image(dataset.id, image_id)
    return _private(send_file(get_storage().local_path(thumb_key(image.sha256)), mimetype="image/webp", max_age=86400,
                              etag=image.sha256))


def _private(response):
    """Images are private data: browsers may cache them, shared proxies must not."""
    response.cache_control.public = False
    response.cache_control.private = True
    return response


@bp.route("/datasets/<int:dataset_id>/export")
@login_required
def export_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    return Response(stream_with_context(export_zip(dataset.id)), mimetype="application/zip",
                    headers=attachment_headers(zip_filename(dataset.name)))
