"""Everything under /admin (our pages and rq-dashboard) is a 404 for anyone but an admin."""
from __future__ import annotations

import re

import pytest
from rq.job import Job

from app.extensions import get_queue, get_redis
from tests.ops.jobs import record_run

SAMPLE_ARGS = {"int": "1", "default": "x"}


def admin_urls(app) -> list[tuple[str, str]]:
    """(method, url) for every admin.* and rq_dashboard.* route, placeholders filled in."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("admin.", "rq_dashboard.")):
            continue
        url = re.sub(r"<int:\w+>", "1", rule.rule)
        url = re.sub(r"<any\(([\w]+)[^>]*>", r"\1", url)
        url = re.sub(r"<(?:path:|string:)?\w+>", "x", url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            urls.append((method, url))
    return urls


def test_route_enumeration_covers_admin_and_dashboard(app):
    urls = admin_urls(app)
    assert ("GET", "/admin/") in urls and ("POST", "/admin/shutdown") in urls
    assert ("GET", "/admin/rq/") in urls and ("POST", "/admin/rq/job/x/requeue") in urls
    assert len(urls) >= 20


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_non_admins_get_404_everywhere(app, client, make_user, who):
    if who == "user":
        make_user("alice")
        assert client.post("/login", data={"username": "alice", "password": "correct horse"}).status_code == 302
    for method, url in admin_urls(app):
        response = client.open(url, method=method)
        assert response.status_code == 404, (who, method, url, response.status_code)
        assert b"rq-dashboard" not in response.data.lower()


def test_disabled_admin_is_refused(app, admin_client):
    from app.extensions import db

    admin_client.user.is_disabled = True
    db.session.commit()
    assert admin_client.get("/admin/").status_code in (302, 404)
    assert admin_client.get("/admin/rq/").status_code == 404


def test_admin_sees_overview_and_queue(app, admin_client):
    get_queue().enqueue(record_run, "a", job_timeout=30, result_ttl=60)
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    assert b"training jobs waiting" in page.data and b"switched off" in page.data
    queue = admin_client.get("/admin/queue")
    assert queue.status_code == 200 and b"Recent training runs" in queue.data
    partial = admin_client.get("/admin/queue", headers={"HX-Request": "true"})
    assert partial.data.lstrip().startswith(b'<div id="queue-overview"')


def test_rq_dashboard_shows_the_apps_own_queue(app, admin_client):
    job = get_queue().enqueue(record_run, "b", job_timeout=30, result_ttl=60)
    queue_name = get_queue().name
    for url in ["/admin/rq/", "/admin/rq/0/view/workers", "/admin/rq/0/view/jobs",
                f"/admin/rq/0/view/jobs/{queue_name}/queued/8/asc/1", f"/admin/rq/0/view/job/{job.id}",
                "/admin/rq/static/js/jquery-3.5.1.min.js"]:
        response = admin_client.get(url)
        response.close()  # the static file is streamed from an open file
        assert response.status_code == 200, url
    queues = admin_client.get("/admin/rq/0/data/queues.json").get_json()["queues"]
    assert {"name": queue_name, "count": 1} in [{"name": q["name"], "count": q["count"]} for q in queues]
    jobs = admin_client.get(f"/admin/rq/0/data/jobs/{queue_name}/queued/8/asc/1.json").get_json()
    assert [j["id"] for j in jobs["jobs"]] == [job.id]
    info = admin_client.get(f"/admin/rq/0/data/job/{job.id}.json").get_json()
    assert info["status"] == "queued" and info["origin"] == queue_name
    assert admin_client.get("/admin/rq/0/data/workers.json").get_json() == {"workers": []}


def test_rq_dashboard_posts_work_same_origin_only(app, admin_client):
    job = get_queue().enqueue(record_run, "c", job_timeout=30, result_ttl=60)
    url = f"/admin/rq/job/{job.id}/delete"
    cross = admin_client.post(url, csrf=False, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    missing = admin_client.post(url, csrf=False)
    assert missing.status_code == 403
    assert Job.exists(job.id, connection=get_redis())
    # rq-dashboard's jQuery posts carry no CSRF token; the browser's Origin header does.
    same = admin_client.post(url, csrf=False, headers={"Origin": "http://localhost"})
    assert same.status_code == 200 and same.get_json() == {"status": "OK"}
    assert not Job.exists(job.id, connection=get_redis())
    assert admin_client.get("/admin/rq/requeue/x").status_code == 403  # a state-changing GET


def test_dashboard_job_page_escapes_job_text_and_has_its_own_policy(app, admin_client):
    job = get_queue().enqueue(record_run, "a", job_timeout=30, result_ttl=60,
                              description="<img src=x onerror=alert(1)>")
    page = admin_client.get(f"/admin/rq/0/view/job/{job.id}")
    assert page.status_code == 200
    html = page.data.decode()
    assert "<%- d.description %>" in html and "<%- d.exc_info %>" in html  # escaped interpolation
    assert "<%= d." not in html
    csp = page.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in admin_client.get("/admin/").headers["Content-Security-Policy"].split(
        "script-src")[1].split(";")[0]
