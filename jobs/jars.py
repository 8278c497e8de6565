"""Delta's JVM jars: resolved once from Maven Central into `.cache/jars`.

`make setup` runs `python -m jobs.jars resolve`. It uses the Ivy jar that pyspark ships
(no Maven install needed), retrieves `io.delta:delta-spark_<spark>_<scala>` with its
dependencies, and keeps only the jars Spark does not already ship (Ivy would otherwise
put older copies of jackson, hadoop-client and parquet next to Spark's own).

The session builder (`jobs.spark`) then passes the local files as `spark.jars`: no network
at run time, and the same files can be copied to an air-gapped cluster (`delta.jars_dir`).

`resolve` also compiles `jvm/src` into `.cache/jvm/lakehouse-jvm.jar` when a JDK is on PATH:
Hadoop's local file system without a child process per file (`lakehouse.hadoop`) and the
listener that counts Spark jobs per pipeline stage (`lakehouse.spark.JobCounter`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from jobs.config import PROJECT_DIR, DeltaConf, PipelineConf, load_file

CACHE_DIR = PROJECT_DIR / ".cache"
JARS_DIR = CACHE_DIR / "jars"
STAMP = JARS_DIR / ".resolved"
JVM_SOURCES = PROJECT_DIR / "jvm" / "src"
JVM_JAR = CACHE_DIR / "jvm" / "lakehouse-jvm.jar"
LOCAL_FS_CLASSES = {  # Hadoop setting → our class, for file:// paths of a local session
    "spark.hadoop.fs.file.impl": "lakehouse.hadoop.NoForkLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "lakehouse.hadoop.NoForkLocalFs",
}
_SPARK_JAR = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d[\w.\-]*)\.jar$")


class JarResolutionError(RuntimeError):
    """Delta's jars could not be resolved; the message says why and what to do."""


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def spark_shipped_artifacts() -> set[str]:
    """Artifact ids of the jars bundled with pyspark (e.g. `jackson-core`)."""
    names = set()
    for jar in pyspark_jars_dir().glob("*.jar"):
        match = _SPARK_JAR.match(jar.name)
        if match:
            names.add(match.group("artifact"))
    return names


def stamp_text(delta: DeltaConf) -> str:
    return f"{delta.maven_artifact}:{delta.version}\n"


def resolved_jars(delta: DeltaConf, jars_dir: Path = JARS_DIR) -> list[Path] | None:
    """The cached jars if they were resolved for exactly this Delta artifact, else None."""
    stamp = jars_dir / ".resolved"
    if not stamp.is_file() or stamp.read_text() != stamp_text(delta):
        return None
    jars = sorted(jars_dir.glob("*.jar"))
    return jars or None


def resolve(delta: DeltaConf, jars_dir: Path = JARS_DIR) -> list[Path]:
    """Retrieve Delta's jars into `jars_dir`, minus what Spark already ships."""
    if resolved_jars(delta, jars_dir):
        return resolved_jars(delta, jars_dir) or []
    java = shutil.which("java")
    if java is None:
        raise JarResolutionError("java not found on PATH: Spark needs Java 17")
    ivy_jar = next(iter(sorted(pyspark_jars_dir().glob("ivy-*.jar"))), None)
    if ivy_jar is None:
        raise JarResolutionError(f"no ivy-*.jar in {pyspark_jars_dir()}; is pyspark installed?")
    group, _, artifact = delta.maven_artifact.partition(":")
    with tempfile.TemporaryDirectory(dir=CACHE_DIR if CACHE_DIR.exists() else None) as tmp:
        pattern = f"{tmp}/[organisation]__[artifact]__[revision].[ext]"
        cmd = [
            java, "-jar", str(ivy_jar),
            "-cache", str(CACHE_DIR / "ivy"),
            "-dependency", group, artifact, delta.version,
            "-confs", "default",
            "-retrieve", pattern,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            raise JarResolutionError(
                f"could not resolve {delta.maven_artifact}:{delta.version} from Maven Central "
                f"(is https://repo1.maven.org reachable? behind a proxy set JAVA_TOOL_OPTIONS "
                f"with -Dhttps.proxyHost/-Dhttps.proxyPort). Ivy said:\n{tail}"
            )
        shipped = spark_shipped_artifacts()
        kept: list[Path] = []
        jars_dir.mkdir(parents=True, exist_ok=True)
        for old in jars_dir.glob("*.jar"):
            old.unlink()
        for jar in sorted(Path(tmp).glob("*.jar")):
            org, art, rev = jar.stem.split("__")
            if art in shipped:
                continue
            target = jars_dir / f"{org}_{art}-{rev}.jar"
            shutil.copyfile(jar, target)
            kept.append(target)
    if not any(p.name.startswith(f"{group}_{artifact}-") for p in kept):
        raise JarResolutionError(f"Ivy finished but {artifact} is not among the retrieved jars")
    (jars_dir / ".resolved").write_text(stamp_text(delta))
    return kept


def build_jvm_jar(jar: Path = JVM_JAR) -> Path | None:
    """Compile `jvm/src` against the Spark and Hadoop jars pyspark ships into `jar` (kept
    while it is newer than every source). Without Hadoop's native library its local file
    system starts a `chmod` process for every file it creates and a `readlink` for every
    rename; `lakehouse.hadoop` does both through java.nio. None when no JDK is on PATH:
    sessions then use Hadoop's own class (slower, the same files) and count Spark jobs with
    the status tracker (which forgets jobs past `spark.ui.retainedJobs`)."""
    sources = sorted(JVM_SOURCES.rglob("*.java"))
    if jar.is_file() and all(jar.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return jar
    javac = shutil.which("javac")
    if javac is None or not sources:
        return None
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar.parent) as tmp:
        classpath = f"{pyspark_jars_dir()}/*"
        cmd = [javac, "--release", "17", "-nowarn", "-cp", classpath, "-d", tmp,
               *map(str, sources)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise JarResolutionError(f"javac could not compile {JVM_SOURCES}:\n{proc.stderr}")
        partial = jar.with_suffix(".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for cls in sorted(Path(tmp).rglob("*.class")):
                out.write(cls, cls.relative_to(tmp).as_posix())
        partial.replace(jar)
    return jar


def jvm_jar() -> Path | None:
    """The jar of `jvm/src`, if `make setup` built it."""
    return JVM_JAR if JVM_JAR.is_file() else None


def main(argv: list[str]) -> int:
    if argv != ["resolve"]:
        print("usage: python -m jobs.jars resolve", file=sys.stderr)
        return 2
    delta = load_file(PipelineConf, PROJECT_DIR / "conf" / "lakehouse.yaml").delta
    try:
        jars = resolve(delta)
    except JarResolutionError as exc:
        print(f"jars: {exc}", file=sys.stderr)
        return 1
    print(f"jars: {len(jars)} jars for {delta.maven_artifact}:{delta.version} in {JARS_DIR}")
    try:
        ours = build_jvm_jar()
    except JarResolutionError as exc:
        print(f"jars: {exc}", file=sys.stderr)
        return 1
    if ours is None:
        print("jars: no javac on PATH; local sessions use Hadoop's own local file system "
              "(one chmod process per file written)", file=sys.stderr)  # fmt: skip
    else:
        print(f"jars: the project's JVM classes (jvm/src) in {ours}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
