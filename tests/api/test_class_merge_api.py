"""Merging classes through the API (the page: tests/datasets/test_class_merge.py)."""

def test_the_api_merges_a_class_into_another(api_as, world):
    ids = world()
    api = api_as("editor")
    answer = api.post(f"/api/v1/datasets/{ids['d']}/classes/{ids['l']}/merge", json={"into": ids["l2"]})
    assert answer.status_code == 200, answer.json
    assert answer.json["moved"] == 4 and answer.json["into"]["images"] == 8 and answer.json["into"]["id"] == ids["l2"]
    classes = api.get(f"/api/v1/datasets/{ids['d']}/classes").json["classes"]
    assert [c["name"] for c in classes] == ["blue"]
    again = api.post(f"/api/v1/datasets/{ids['d']}/classes/{ids['l2']}/merge", json={"into": ids["l2"]})
    assert again.status_code == 422 and again.json["code"]
