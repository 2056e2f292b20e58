"""Where Spark's class archive goes, when there is none, and that a failure to make it never stops a run
(the archive itself, made and used by a real JVM, is tested in tests/scale_out/test_spark_scoring.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyspark

from aeflow import spark


def test_the_archive_is_named_after_java_and_pyspark_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(spark.ARCHIVE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk-17"))
    first = spark.class_archive()
    assert first is not None
    assert first.parent == tmp_path / "cache" / "aeflow" / "spark-classes"
    assert first.name.startswith(f"pyspark-{pyspark.__version__}-") and first.suffix == ".jsa"
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk-21"))  # another Java: another archive
    second = spark.class_archive()
    assert second is not None and second.parent == first.parent and second != first


def test_the_environment_chooses_the_file_or_turns_it_off(monkeypatch, tmp_path):
    monkeypatch.setenv(spark.ARCHIVE_ENV, str(tmp_path / "mine.jsa"))
    assert spark.class_archive() == tmp_path / "mine.jsa"
    for off in ("off", "OFF", "0", "false", "no"):
        monkeypatch.setenv(spark.ARCHIVE_ENV, off)
        assert spark.class_archive() is None


def test_an_archive_that_cannot_be_made_says_why_and_lets_the_run_go_on(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    said: list[str] = []
    assert spark.make_class_archive(blocker / "classes.jsa", said.append) is False
    assert "archiving Spark's classes once" in said[0]
    assert "no class archive" in said[-1] and "starting from the jars" in said[-1]
    assert f"{spark.ARCHIVE_ENV}=off" in said[-1]
    assert not (blocker / "classes.jsa").exists()


def test_the_archive_options_keep_crash_reports_out_of_the_working_directory(tmp_path):
    options = spark.from_archive(tmp_path / "a.jsa").split()
    assert f"-XX:SharedArchiveFile={tmp_path / 'a.jsa'}" in options
    assert "-Xshare:auto" in options  # an archive the JVM rejects means the jars, not a failed start
    crash = next(o for o in options if o.startswith("-XX:ErrorFile="))
    assert Path(crash.removeprefix("-XX:ErrorFile=")).parent == Path(tempfile.gettempdir())


def test_a_failed_attempt_is_noted_beside_the_archive_so_later_runs_do_not_pay_it_again(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(spark, "ARCHIVE_TIMEOUT_S", 0.01)  # the archiving job cannot finish in 10 ms
    said: list[str] = []
    archive = tmp_path / "classes.jsa"
    assert spark.make_class_archive(archive, said.append) is False
    note = spark.failure_note(archive)
    assert note.parent == tmp_path and "timed out" in note.read_text()
    assert "timed out" in said[-1] and not archive.exists()
