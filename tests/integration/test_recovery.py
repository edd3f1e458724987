"""Recovery refuses what it cannot trust and says where: a corrupt WAL record
followed by valid ones, a snapshot with a bad checksum. --accept-data-loss
starts anyway. A torn tail is cut off and logged. An I/O error on the WAL
(here: a file-size limit, EFBIG) turns writes into 503 wal_read_only while
reads go on. vectord-inspect reads snapshot files too."""
import glob
import os
import re
import resource
import shutil
import subprocess
import tempfile

from conftest import BIN, Server

INSPECT = os.environ.get("VECTORD_INSPECT_BIN",
                         os.path.join(os.path.dirname(__file__), "../../build/vectord-inspect"))


def start_fails(data_dir, *args):
    r = subprocess.run([BIN, "--listen", "127.0.0.1:0", "--data-dir", data_dir, *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    return r.stdout + r.stderr


def fill(data_dir, n=30, checkpoint=False):
    s = Server(data_dir=data_dir)
    c = s.client
    c.ok("PUT", "/collections/c", {"dim": 4, "metric": "l2"})
    for i in range(n):
        c.ok("PUT", "/collections/c/points", {"points": [{"id": i, "vector": [i, 1, 2, 3], "payload": {"i": i}}]})
    if checkpoint:
        c.ok("POST", "/admin/checkpoint")
    s.kill()


def test_corrupt_wal_record_refuses_start_naming_file_and_offset():
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        fill(data)
        seg = sorted(glob.glob(os.path.join(data, "wal", "wal-*.log")))[0]
        raw = bytearray(open(seg, "rb").read())
        raw[200] ^= 0xFF  # inside an early record; valid ones follow
        open(seg, "wb").write(bytes(raw))
        out = start_fails(data)
        assert "refusing to start" in out and os.path.basename(seg) in out
        assert re.search(r"corrupt at offset \d+", out), out
        s = Server(data_dir=data, args=["--accept-data-loss"])
        try:
            assert "cutting the WAL at a corrupt record" in s.logs()
            n = s.client.ok("GET", "/collections/c")["points_count"]
            assert 0 < n < 30  # the records before the bad one survive
        finally:
            s.stop()


def test_torn_tail_is_cut_and_logged():
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        fill(data)
        seg = sorted(glob.glob(os.path.join(data, "wal", "wal-*.log")))[0]
        with open(seg, "ab") as f:
            f.write(b"\x40\x00\x00\x00partial record")
        s = Server(data_dir=data)
        try:
            assert "cutting a torn write off the end of the WAL" in s.logs()
            assert s.client.ok("GET", "/collections/c")["points_count"] == 30
        finally:
            s.stop()


def test_bad_snapshot_checksum_refuses_start():
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        fill(data, checkpoint=True)
        shard = sorted(glob.glob(os.path.join(data, "snapshots", "c*", "shard-*.snap")))[-1]
        r = subprocess.run([INSPECT, shard], capture_output=True, text=True)
        assert r.returncode == 0 and "kind shard" in r.stdout and "verdict: clean" in r.stdout
        raw = bytearray(open(shard, "rb").read())
        raw[40] ^= 0x01
        open(shard, "wb").write(bytes(raw))
        r = subprocess.run([INSPECT, shard], capture_output=True, text=True)
        assert r.returncode == 2 and "checksum mismatch" in r.stdout
        out = start_fails(data)
        assert os.path.basename(shard) in out and "checksum mismatch" in out, out
        s = Server(data_dir=data, args=["--accept-data-loss"])
        try:
            assert "dropping a collection whose snapshot is unreadable" in s.logs()
        finally:
            s.stop()


def test_wal_io_error_makes_writes_503_and_reads_go_on():
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        s = Server(data_dir=data)
        s.client.ok("PUT", "/collections/c", {"dim": 4, "metric": "l2"})
        s.client.ok("PUT", "/collections/c/points", {"points": [{"id": 1, "vector": [1, 2, 3, 4]}]})
        s.stop()
        # Restart under a 48 KiB file-size limit: the WAL segment outgrows it.
        limit = 48 * 1024
        s = Server(data_dir=data, preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
        try:
            c = s.client
            big = {"points": [{"id": i, "vector": [1, 2, 3, 4], "payload": {"pad": "x" * 900}}
                              for i in range(100, 110)]}
            codes = []
            for _ in range(20):
                st, doc = c.request("PUT", "/collections/c/points", big)
                codes.append(st)
                if st != 200:
                    assert st == 503 and doc["error"]["code"] == "wal_read_only", doc
                    assert "read-only" in doc["error"]["message"]
                    break
            assert codes[-1] == 503, codes
            # Later writes are refused too; reads answer.
            c.error("PUT", "/collections/c/points", {"points": [{"id": 5, "vector": [1, 1, 1, 1]}]},
                    status=503, code="wal_read_only")
            assert c.ok("GET", "/collections/c/points/1")["id"] == 1
            hits = c.ok("POST", "/collections/c/search", {"vector": [1, 2, 3, 4], "k": 1})
            assert len(hits) == 1 and hits[0]["score"] == 0
            metrics = c.request("GET", "/metrics")[1]
            assert "vectord_wal_read_only 1" in metrics
        finally:
            s.stop()


def test_snapshot_write_error_is_503_and_the_old_snapshot_stays():
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        s = Server(data_dir=data)
        s.client.ok("PUT", "/collections/c", {"dim": 64, "metric": "l2"})
        s.client.ok("PUT", "/collections/c/points",
                    {"points": [{"id": i, "vector": [float(i)] * 64} for i in range(800)]})
        s.stop()  # the shutdown checkpoint writes ~110 KiB per shard
        # Under a 64 KiB file-size limit the WAL still fits, a new snapshot does not.
        limit = 64 * 1024
        s = Server(data_dir=data, preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
        try:
            c = s.client
            c.ok("PUT", "/collections/c/points", {"points": [{"id": 1000, "vector": [1.0] * 64}]})
            err = c.error("POST", "/admin/checkpoint", status=503, code="snapshot_failed")
            # The message names the file and the step that failed (docs/API.md).
            assert re.search(r"shard-\d+\.snap|collection\.snap", err["message"]), err
            assert re.search(r"\((write|rename|fdatasync|directory fsync|open|build)\)", err["message"]), err
            err = c.error("POST", "/collections/c/snapshot", status=503, code="snapshot_failed")
            assert ".snap" in err["message"], err
            assert c.ok("GET", "/collections/c")["points_count"] == 801  # serving goes on
        finally:
            s.kill()
        s = Server(data_dir=data)  # the old snapshot plus the WAL: nothing lost
        try:
            assert s.client.ok("GET", "/collections/c")["points_count"] == 801
        finally:
            s.stop()


def wal_in_three_segments(data):
    """300 one-point upserts over three 64 KiB segments, checkpoints off, then SIGKILL."""
    s = Server(data_dir=data, args=["--set", "wal_segment_bytes=65536", "--set", "checkpoint_interval_s=0",
                                    "--set", "checkpoint_wal_bytes=0"])
    c = s.client
    c.ok("PUT", "/collections/c", {"dim": 128, "metric": "l2"})
    for i in range(300):
        c.ok("PUT", "/collections/c/points", {"points": [{"id": i, "vector": [float(i)] * 128}]})
    s.kill()
    segs = sorted(glob.glob(os.path.join(data, "wal", "wal-*.log")))
    assert len(segs) >= 3, segs
    return segs


def test_a_missing_or_emptied_wal_segment_refuses_start_naming_the_lost_lsns():
    for damage in ("remove", "truncate"):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data")
            segs = wal_in_three_segments(data)
            middle = segs[1]
            first_lsn = int(os.path.basename(middle)[4:20], 16)
            if damage == "remove":
                os.unlink(middle)
            else:
                open(middle, "wb").close()
            out = start_fails(data)
            m = re.search(r"records LSN (\d+) to (\d+) are missing before segment (\S+)", out)
            assert m and "refusing to start" in out, out
            assert int(m.group(1)) == first_lsn and os.path.basename(segs[2]) in m.group(3), out
            # --accept-data-loss starts without them, says so at error level and counts them.
            s = Server(data_dir=data, args=["--accept-data-loss"])
            try:
                assert re.search(r'level=error msg="the WAL has a gap', s.logs()), s.logs()
                metrics = s.client.request("GET", "/metrics")[1]
                lost = int(re.search(r"^vectord_recovery_lost_records (\d+)$", metrics, re.M).group(1))
                assert lost == int(m.group(2)) - int(m.group(1)) + 1
                n = s.client.ok("GET", "/collections/c")["points_count"]
                assert n == 300 - lost, (n, lost)
            finally:
                s.stop()



def test_removing_the_first_wal_segment_refuses_start():
    """No checkpoint ever ran, so the log must start at LSN 1: without its
    first segment the collection used to vanish with exit 0."""
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        segs = wal_in_three_segments(data)
        os.unlink(segs[0])
        out = start_fails(data)
        second = int(os.path.basename(segs[1])[4:20], 16)
        m = re.search(r"records LSN (\d+) to (\d+) are missing before segment (\S+)", out)
        assert m and (int(m.group(1)), int(m.group(2))) == (1, second - 1), out
        assert os.path.basename(segs[1]) in m.group(3), out


CKPT_ARGS = ["--set", "wal_segment_bytes=65536", "--set", "checkpoint_interval_s=0",
             "--set", "checkpoint_wal_bytes=0"]


def checkpointed_three_shards(data, n=600, small_segments=True):
    """A 3-shard collection of n points, checkpointed (with small segments
    the WAL it covered is removed), then SIGKILL. Returns its folder."""
    s = Server(data_dir=data, args=CKPT_ARGS if small_segments else [])
    c = s.client
    c.ok("PUT", "/collections/c", {"dim": 32, "metric": "l2", "shards": 3})
    for i in range(0, n, 50):
        c.ok("PUT", "/collections/c/points",
             {"points": [{"id": j, "vector": [float(j % 7)] * 32, "payload": {"j": j}} for j in range(i, i + 50)]})
    c.ok("POST", "/admin/checkpoint")
    s.kill()
    folders = glob.glob(os.path.join(data, "snapshots", "c*"))
    assert len(folders) == 1 and os.path.exists(os.path.join(data, "snapshots", "manifest.snap"))
    if small_segments:
        first = sorted(glob.glob(os.path.join(data, "wal", "wal-*.log")))[0]
        assert int(os.path.basename(first)[4:20], 16) > 1, "the checkpoint removed no segment"
    return folders[0]


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_a_missing_snapshot_file_or_folder_refuses_start():
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "base")
        folder = os.path.basename(checkpointed_three_shards(base))
        cases = {
            "shard": (lambda x: os.unlink(os.path.join(x, "snapshots", folder, "shard-1.snap")),
                      r"snapshot \S+/shard-1.snap is missing"),
            "collection file": (lambda x: os.unlink(os.path.join(x, "snapshots", folder, "collection.snap")),
                                r"collection.snap \(collection 'c'\) is missing"),
            "folder": (lambda x: shutil.rmtree(os.path.join(x, "snapshots", folder)),
                       r"snapshot folder \S+ \(collection 'c', 3 shards\) is missing"),
            "manifest": (lambda x: os.unlink(os.path.join(x, "snapshots", "manifest.snap")),
                         r"the checkpoint manifest \S+ is missing"),
            "all snapshots": (lambda x: shutil.rmtree(os.path.join(x, "snapshots")),
                              r"records LSN 1 to \d+ are missing before segment"),
        }
        for name, (damage, expect) in cases.items():
            data = os.path.join(d, name.replace(" ", "_"))
            shutil.copytree(base, data)
            damage(data)
            out = start_fails(data)
            assert re.search(expect, out) and "refusing to start" in out, (name, out)
        # --accept-data-loss starts, says so at error level and counts the file.
        data = os.path.join(d, "accept")
        shutil.copytree(base, data)
        os.unlink(os.path.join(data, "snapshots", folder, "shard-1.snap"))
        s = Server(data_dir=data, args=["--accept-data-loss"])
        try:
            assert "level=error" in s.logs() and "shard-1.snap is missing" in s.logs(), s.logs()
            metrics = s.client.request("GET", "/metrics")[1]
            assert re.search(r"^vectord_recovery_lost_snapshot_files 1$", metrics, re.M), metrics
            # The collection is dropped whole, never served with a hole in it.
            assert s.client.request("GET", "/collections/c")[0] == 404
        finally:
            s.stop()


def thirty_points_checkpointed(data):
    """A running server (small segments, no automatic checkpoint) whose 3-shard
    collection holds 30 points, all in the snapshots."""
    s = Server(data_dir=data, args=CKPT_ARGS)
    c = s.client
    c.ok("PUT", "/collections/c", {"dim": 32, "metric": "l2", "shards": 3})
    c.ok("PUT", "/collections/c/points", {"points": [{"id": j, "vector": [1.0] * 32} for j in range(30)]})
    c.ok("POST", "/admin/checkpoint")
    return s, c


def test_an_older_snapshot_file_than_the_manifest_lists_refuses_start():
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        s, c = thirty_points_checkpointed(data)
        folder = glob.glob(os.path.join(data, "snapshots", "c*"))[0]
        old = open(os.path.join(folder, "shard-0.snap"), "rb").read()
        for i in range(0, 600, 50):
            c.ok("PUT", "/collections/c/points",
                 {"points": [{"id": j, "vector": [2.0] * 32} for j in range(i, i + 50)]})
        c.ok("POST", "/admin/checkpoint")
        s.kill()
        with open(os.path.join(folder, "shard-0.snap"), "wb") as f:
            f.write(old)  # a valid file, but the previous checkpoint's
        out = start_fails(data)
        assert re.search(r"shard-0.snap is not the one the checkpoint manifest lists .*an older copy", out), out


def test_a_checkpoint_cut_short_before_its_manifest_starts_with_the_newer_files():
    """Files written, manifest not yet (nor any WAL segment removed): the old
    manifest lists older files, and the newer valid ones are accepted."""
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        s, c = thirty_points_checkpointed(data)
        for i in range(0, 600, 50):
            c.ok("PUT", "/collections/c/points",
                 {"points": [{"id": j, "vector": [2.0] * 32, "payload": {"j": j}} for j in range(i, i + 50)]})
        manifest = os.path.join(data, "snapshots", "manifest.snap")
        old_manifest = open(manifest, "rb").read()
        wal_copy = os.path.join(d, "wal-before")
        shutil.copytree(os.path.join(data, "wal"), wal_copy)
        c.ok("POST", "/admin/checkpoint")
        s.kill()
        with open(manifest, "wb") as f:
            f.write(old_manifest)
        shutil.rmtree(os.path.join(data, "wal"))
        shutil.copytree(wal_copy, os.path.join(data, "wal"))
        s = Server(data_dir=data, args=CKPT_ARGS)
        try:
            assert s.client.ok("GET", "/collections/c")["points_count"] == 600
            assert s.client.ok("GET", "/collections/c/points/599")["payload"] == {"j": 599}
        finally:
            s.stop()


def test_a_missing_snapshot_whose_records_the_wal_still_holds_is_rebuilt():
    """Default segments: the checkpoint removed no WAL segment, so nothing is
    lost when a shard file goes: it is rebuilt from the log, with a warning."""
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        folder = checkpointed_three_shards(data, small_segments=False)
        os.unlink(os.path.join(folder, "shard-2.snap"))
        s = Server(data_dir=data)
        try:
            assert "level=warn" in s.logs() and "rebuilding it from the WAL" in s.logs(), s.logs()
            assert s.client.ok("GET", "/collections/c")["points_count"] == 600
        finally:
            s.stop()


def test_a_wal_cut_at_its_end_before_the_manifests_wal_end_refuses_start():
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        s = Server(data_dir=data, args=CKPT_ARGS)
        c = s.client
        c.ok("PUT", "/collections/a", {"dim": 128, "metric": "l2"})
        c.ok("PUT", "/collections/b", {"dim": 128, "metric": "l2"})
        c.ok("PUT", "/collections/a/points", {"points": [{"id": 0, "vector": [0.0] * 128}]})
        c.ok("POST", "/collections/a/snapshot")
        for i in range(300):  # b is never checkpointed: all of its records stay in the WAL
            c.ok("PUT", "/collections/b/points", {"points": [{"id": i, "vector": [float(i)] * 128}]})
        c.ok("POST", "/collections/a/snapshot")
        s.kill()
        segs = sorted(glob.glob(os.path.join(data, "wal", "wal-*.log")))
        assert len(segs) >= 3, segs
        os.unlink(segs[-1])
        out = start_fails(data)
        assert re.search(r"records LSN \d+ to \d+ are missing at the end of \S+ \(the last checkpoint", out), out


def test_snapshots_from_before_the_manifest_still_start():
    """A data directory of an older vectord: format-1 files, no manifest."""
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        checkpointed_three_shards(data)
        os.unlink(os.path.join(data, "snapshots", "manifest.snap"))
        for p in glob.glob(os.path.join(data, "snapshots", "**", "*.snap"), recursive=True):
            b = bytearray(open(p, "rb").read())
            assert b[8:12] == (2).to_bytes(4, "little")
            b[8:12] = (1).to_bytes(4, "little")
            b[-8:-4] = crc32c(bytes(b[:-16])).to_bytes(4, "little")
            open(p, "wb").write(bytes(b))
        s = Server(data_dir=data, args=CKPT_ARGS)
        try:
            assert s.client.ok("GET", "/collections/c")["points_count"] == 600
            s.client.ok("POST", "/admin/checkpoint")  # and now it has a manifest
            assert os.path.exists(os.path.join(data, "snapshots", "manifest.snap"))
        finally:
            s.stop()
