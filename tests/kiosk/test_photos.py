"""Member photos against the real reference upstream: good, wrong hash, oversized, not an image."""

import hashlib
import io
import logging
import threading

import pytest
from PIL import Image

from kiosk.photos import (PhotoCache, PhotoError, PhotoRef, demo_photo, parse_ref, photo_field,
                          thumbnail)
from kiosk.upstream.reference import RefStore, RefUpstream

TOKEN = "photo-test-token"


@pytest.fixture
def ref(tmp_path):
    server = RefUpstream(RefStore(tmp_path / "upstream.sqlite"), TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def cache(tmp_path, ref):
    photos = PhotoCache(tmp_path / "photos", ref.url, token=TOKEN, timeout_s=5, max_file_bytes=300_000,
                        max_pixels=2000 * 2000, max_cache_bytes=10_000_000)
    yield photos
    photos.close()


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG", optimize=True)
    return out.getvalue()


def test_a_good_photo_is_fetched_checked_and_kept_as_a_small_png(ref, cache):
    data = demo_photo("I-1001")
    ref.photos["I-1001.png"] = data
    field = photo_field("photos/I-1001.png", data)
    assert cache.path(field) is None
    kept = cache.fetch(parse_ref(field, ref.url))
    assert cache.path(field) == kept and kept.name == hashlib.sha256(data).hexdigest() + ".png"
    with Image.open(kept) as image:
        assert image.format == "PNG" and max(image.size) <= 360
    assert ref.last_headers["photos"]["Authorization"] == f"Bearer {TOKEN}"


def test_want_fetches_in_the_background(ref, cache):
    data = demo_photo("I-1002")
    ref.photos["I-1002.png"] = data
    field = photo_field("photos/I-1002.png", data)
    cache.want(field)
    done = threading.Event()
    for _ in range(500):  # waits for the state it asserts, no time bound on the work
        if cache.path(field):
            done.set()
            break
        done.wait(0.01)
    assert cache.path(field) is not None


def test_a_wrong_hash_is_refused_and_nothing_is_kept(ref, cache, caplog):
    ref.photos["I-1003.png"] = demo_photo("I-1003")
    field = "photos/I-1003.png#sha256=" + "0" * 64
    with pytest.raises(PhotoError, match="content hash"):
        cache.fetch(parse_ref(field, ref.url))
    assert cache.path(field) is None and not list(cache.folder.glob("*.png"))


def test_an_oversized_file_is_refused_while_downloading(ref, cache):
    big = png(10, 10) + b"\0" * 400_000  # over the 300 kB cap
    ref.photos["big.png"] = big
    with pytest.raises(PhotoError, match="byte cap"):
        cache.fetch(parse_ref(photo_field("photos/big.png", big), ref.url))


def test_an_image_too_many_pixels_is_refused_before_decoding(ref, cache):
    huge = png(3000, 3000)  # small file (one colour), 9 Mpx: over the 4 Mpx cap
    assert len(huge) < 300_000
    ref.photos["huge.png"] = huge
    with pytest.raises(PhotoError, match="pixel cap"):
        cache.fetch(parse_ref(photo_field("photos/huge.png", huge), ref.url))


@pytest.mark.parametrize("junk", [b"<html>not a photo</html>", b"GIF89a" + b"\0" * 50, png(40, 40)[:60]])
def test_a_file_that_is_not_a_usable_image_is_refused(ref, cache, junk):
    ref.photos["junk.png"] = junk
    with pytest.raises(PhotoError):
        cache.fetch(parse_ref(photo_field("photos/junk.png", junk), ref.url))


def test_a_bad_photo_in_the_background_is_logged_once_and_not_fetched_again(ref, cache, caplog):
    caplog.set_level(logging.WARNING)
    ref.photos["junk.png"] = b"not an image"
    field = photo_field("photos/junk.png", b"not an image")
    cache.want(field)
    done = threading.Event()
    for _ in range(500):
        if cache.refused:
            break
        done.wait(0.01)
    requests = ref.requests.get("photos", 0)
    cache.want(field)
    cache.want(field)
    cache.close()  # drains the queue
    assert ref.requests.get("photos", 0) == requests == 1
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


def test_the_token_goes_to_the_upstream_only_and_missing_photos_are_http_errors(ref, cache, tmp_path):
    with pytest.raises(PhotoError, match="HTTP 404"):
        cache.fetch(PhotoRef(ref.url + "/photos/none.png", "0" * 64))
    stranger = PhotoCache(tmp_path / "p2", "http://upstream.invalid/kiosk/v1", token=TOKEN)
    try:
        with pytest.raises(PhotoError, match="HTTP 401"):  # the refupstream wants its token: not sent
            stranger.fetch(PhotoRef(ref.url + "/photos/none.png", "0" * 64))
    finally:
        stranger.close()


def test_references_need_a_hash_and_an_http_url():
    base = "https://hub.example.org/kiosk/v1"
    assert parse_ref("photos/a.png#sha256=" + "A" * 64, base) == PhotoRef(
        "https://hub.example.org/kiosk/v1/photos/a.png", "a" * 64)
    assert parse_ref("https://cdn.example.org/a.jpg#sha256=" + "b" * 64, base).url == "https://cdn.example.org/a.jpg"
    for bad in ("", "photos/a.png", "photos/a.png#sha256=abc", "file:///etc/passwd#sha256=" + "c" * 64,
                "javascript:x#sha256=" + "d" * 64, "x" * 3000):
        assert parse_ref(bad, base) is None, bad


def test_the_cache_stays_under_its_byte_cap(tmp_path, ref):
    photos = PhotoCache(tmp_path / "small", ref.url, token=TOKEN, max_cache_bytes=3 * len(thumbnail(demo_photo("x"))))
    try:
        for i in range(8):
            data = demo_photo(f"member-{i}")
            ref.photos[f"{i}.png"] = data
            photos.fetch(parse_ref(photo_field(f"photos/{i}.png", data), ref.url))
        sizes = [f.stat().st_size for f in photos.folder.glob("*.png")]
        assert 0 < len(sizes) < 8 and sum(sizes) <= photos.max_cache_bytes
    finally:
        photos.close()


def test_the_reference_upstream_serves_generated_demo_photos_that_match_their_references(tmp_path):
    server = RefUpstream(RefStore(tmp_path / "up.sqlite"), TOKEN, demo_photos=True).start()
    photos = PhotoCache(tmp_path / "photos", server.url, token=TOKEN)
    try:
        field = photo_field("photos/I-1002.png", demo_photo("I-1002"))
        assert photos.fetch(parse_ref(field, server.url)).exists()
        with pytest.raises(PhotoError, match="HTTP 404"):  # only .png names are generated
            photos.fetch(parse_ref("photos/I-1002.jpg#sha256=" + "0" * 64, server.url))
    finally:
        photos.close()
        server.stop()
