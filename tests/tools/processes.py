"""Processes the tools tests start for real: a throwaway PostgreSQL cluster,
free loopback ports, polling with a deadline, JSON over HTTP."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request


BUILD = pathlib.Path(os.environ.get("MIRAGE_BUILD_DIR", "build")).resolve()
MIRAGED = str(BUILD / "daemon" / "miraged")


def sample_model(folder):
    """The sample styles model (mirage-model of the build tree), written into |folder|."""
    model = folder / "styles.pt"
    subprocess.run([str(BUILD / "tools" / "model" / "mirage-model"), "styles", str(model)], check=True,
                   capture_output=True)
    return model


def build_env(folder, **extra):
    """The environment for miraged from the build tree: its plugin, a registry in |folder|."""
    return dict(os.environ, GST_PLUGIN_PATH=str(BUILD / "plugins"), GST_REGISTRY=str(folder / "registry.bin"),
                **extra)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Postgres:
    """A throwaway cluster on a free port (as the postgres user when root). With
    |password|, TCP connections need it (SCRAM) and url carries it; the socket
    that query() uses stays trusted."""

    def __init__(self, folder, password=None):
        self.bin = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1]
        self.dir = folder / "pg"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        folder.chmod(0o755)
        self.dir.mkdir()
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        auth = ["--auth=trust"]
        if password:
            pwfile = folder / "pg-password"
            pwfile.write_text(password + "\n")
            if self.as_user:
                shutil.chown(pwfile, "postgres", "postgres")
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        subprocess.run(self.as_user + [str(self.bin / "initdb"), "-D", str(self.dir), "-U", "mirage", *auth,
                                       "-E", "UTF8", "--no-locale"], check=True, capture_output=True)
        self.start()
        subprocess.run(self.as_user + [str(self.bin / "createdb"), "-h", str(self.dir), "-p", str(self.port), "-U",
                                       "mirage", "mirage"], check=True, capture_output=True)
        self.url = f"postgresql://mirage{':' + password if password else ''}@127.0.0.1:{self.port}/mirage"

    def query(self, sql):
        return subprocess.run(self.as_user + [str(self.bin / "psql"), "-h", str(self.dir), "-p", str(self.port), "-U",
                                              "mirage", "-d", "mirage", "-tAc", sql],
                              check=True, capture_output=True, text=True).stdout.strip()

    def start(self):
        subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.dir), "-w", "-l",
                                       str(self.dir / "log"), "-o",
                                       f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop"],
                       capture_output=True)


def api(base, method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def stop_all(procs, timeout=40):
    """SIGTERM to each process still running, then wait; kill what outlives |timeout|."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


class Processes(unittest.TestCase):
    """Tests of real processes: a folder of their own (|prefix|), a PostgreSQL in it
    (with |pg_password| on TCP, if set) and |procs| to stop at the end."""

    prefix = "mirage-"
    pg_password = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix=cls.prefix))
        cls.procs = []
        cls.pg = Postgres(cls.tmp, password=cls.pg_password)

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.procs)
        cls.pg.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def check_running(cls):
        """Fails, with the end of each *.log, once one of |procs| has exited."""
        for p in cls.procs:
            if p.poll() is not None:
                raise AssertionError("a process exited:\n" + "\n".join(
                    f.read_text(errors="replace")[-2000:] for f in cls.tmp.glob("*.log")))
