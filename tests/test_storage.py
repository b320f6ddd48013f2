"""The storage interface: the same behaviour from a folder and from S3 (moto's server over real
HTTP)."""
import os
import shutil

import pytest
import requests

from quiz.storage import FileStorage, storage_from_url

pytestmark = pytest.mark.nodb  # storage and signing: the same on any database


def test_put_get_exists_delete(storage):
    assert (storage.get("forms/challenge1/1.html") is None
            and not storage.exists("forms/challenge1/1.html"))
    storage.put("forms/challenge1/1.html", b"<p>one</p>")
    storage.put("forms/challenge1/1.html", b"<p>one, again</p>")  # put overwrites
    assert storage.get("forms/challenge1/1.html") == b"<p>one, again</p>"
    assert storage.exists("forms/challenge1/1.html")
    storage.delete("forms/challenge1/1.html")
    storage.delete("forms/challenge1/1.html")  # deleting what is gone is fine
    assert storage.get("forms/challenge1/1.html") is None


def test_put_once_never_overwrites(storage):
    assert storage.put_once("answered/challenge1/7.html", b"first") is True
    assert storage.put_once("answered/challenge1/7.html", b"second") is False
    assert storage.get("answered/challenge1/7.html") == b"first"


def test_keys_lists_one_prefix_with_relative_names(storage):
    for key in ("forms/challenge1/1.html", "forms/challenge1/2.html", "forms/challenge10/1.html",
                "answered/challenge1/3.html"):
        storage.put(key, b"x")
    assert storage.keys("forms/challenge1/") == ["forms/challenge1/1.html",
                                                 "forms/challenge1/2.html"]
    assert storage.keys("answered/") == ["answered/challenge1/3.html"]
    assert storage.keys("unanswered/") == []
    storage.delete_many(["forms/challenge1/1.html", "forms/challenge1/2.html",
                         "forms/challenge1/404.html"])
    assert storage.keys("forms/challenge1/") == []


def test_presigned_url_opens_the_object_over_http(storage):
    storage.put("forms/challenge1/1.html", b"<p>hello</p>")
    url = storage.presigned_url("forms/challenge1/1.html", 60)
    if isinstance(storage, FileStorage):
        assert url is None and not storage.presigns  # a folder is served by Knockout itself
    else:
        response = requests.get(url, timeout=10)
        assert response.status_code == 200 and response.content == b"<p>hello</p>"
        assert response.headers["Content-Type"].startswith("text/html")
        assert "X-Amz-Expires=60" in url


@pytest.mark.parametrize("key", ["../outside.html", "forms/../../outside.html",
                                 "../storage-next-door/outside.html", "/tmp/outside.html", ""])
def test_a_key_cannot_leave_the_folder(tmp_path, key):
    store = FileStorage(str(tmp_path / "storage"))
    with pytest.raises(ValueError, match="leaves the storage folder"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="leaves the storage folder"):
        store.put_once(key, b"x")
    assert not (tmp_path / "outside.html").exists()
    assert not (tmp_path / "storage-next-door").exists()


def test_a_temporary_file_a_dead_process_left_does_not_stop_a_write(tmp_path):
    """Writes go through a temporary name of the process's own (.tmp-<pid>-<n>): one left behind
    by a process of the same id that died is passed over, and never listed as a key."""
    store = FileStorage(str(tmp_path / "storage"))
    (tmp_path / "storage" / "forms").mkdir(parents=True)
    for n in range(3):
        (tmp_path / "storage" / "forms" / f".tmp-{os.getpid()}-{n}").write_bytes(b"half")
    store.put("forms/1.html", b"whole")
    assert store.put_once("forms/2.html", b"once") and not store.put_once("forms/2.html", b"again")
    assert store.get("forms/1.html") == b"whole" and store.get("forms/2.html") == b"once"
    assert store.keys("forms") == ["forms/1.html", "forms/2.html"]


def test_a_folder_removed_under_the_store_is_made_again(tmp_path):
    store = FileStorage(str(tmp_path / "storage"))
    store.put("forms/1/a.html", b"a")
    shutil.rmtree(tmp_path / "storage" / "forms")
    store.put("forms/1/b.html", b"b")
    assert store.get("forms/1/b.html") == b"b"


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://", "forms"])
def test_a_storage_url_that_is_neither_file_nor_s3_says_what_to_write(url):
    with pytest.raises(ValueError, match=r"file:///a/folder or s3://bucket/prefix"):
        storage_from_url(url)
