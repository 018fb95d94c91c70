"""GET /api/v1/datasets/<id>/images?q=...: file names that contain a text, in any case, with `class`
and across pages by key, as in the labeling grid."""
from __future__ import annotations


def _names(answer) -> list[str]:
    return [i["filename"] for i in answer.json["images"]]


def test_q_finds_file_names_within_a_class_and_across_pages(api_as, world):
    ids = world()  # red: 0-0.png .. 0-3.png, blue: 1-0.png .. 1-3.png
    api, url = api_as("viewer"), f"/api/v1/datasets/{ids['d']}/images"
    found = api.get(f"{url}?q=-1.PNG")
    assert found.status_code == 200, found.json
    assert _names(found) == ["1-1.png", "0-1.png"] and found.json["total"] == 2
    within = api.get(f"{url}?q=-1&class={ids['l2']}")
    assert _names(within) == ["1-1.png"] and within.json["total"] == 1
    assert api.get(f"{url}?q=1&class=unlabeled").json["total"] == 0
    first = api.get(f"{url}?q=0-&limit=3").json
    assert [i["filename"] for i in first["images"]] == ["0-3.png", "0-2.png", "0-1.png"] and first["total"] == 4
    rest = api.get(f"{url}?q=0-&limit=3&before={first['older']}").json
    assert [i["filename"] for i in rest["images"]] == ["0-0.png"] and rest["older"] is None
    assert api.get(f"{url}?q=%25").json["total"] == 0  # a literal %, not a wildcard
    assert api.get(f"{url}?q=_").json["total"] == 0
    assert api.get(f"{url}?q=").json["total"] == 8 and api.get(f"{url}?q=%20%20").json["total"] == 8


def test_q_is_checked_and_strangers_find_nothing(api_as, world):
    ids = world()
    url = f"/api/v1/datasets/{ids['d']}/images"
    assert api_as("stranger").get(f"{url}?q=0").status_code == 404
    for bad in ("a" * 256, "a%00b"):
        answer = api_as("owner").get(f"{url}?q={bad}")
        assert answer.status_code == 400 and "q" in answer.json["fields"], answer.json
