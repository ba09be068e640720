"""`./dev run` (tools/run-dev.sh) and a port that is already taken.

Each case holds one port with a real listening socket (TCP) or a bound one
(UDP, the SRT port), points the variable of that service at it, and starts
tools/run-dev.sh with every other port moved to a free one: it must stop
before it starts anything, name the port, the service and the variable that
moves it, and leave no var/ folder behind. A port in TIME_WAIT (a closed
connection) must not count as taken. tools/check-ports is also run alone.
"""
import os
import pathlib
import socket
import subprocess
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECK = ROOT / "tools" / "check-ports"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Held:
    """A port held the way another program would hold it."""

    def __init__(self, kind=socket.SOCK_STREAM):
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            self.sock.listen()
        self.port = self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


class RunDevPorts(unittest.TestCase):
    def run_dev(self, **env_overrides):
        """tools/run-dev.sh with free ports everywhere except the overrides, in a copy of tools/."""
        env = dict(os.environ)
        env.update({
            "MIRAGE_PG_PORT": str(free_port()),
            "MIRAGE_HTTP_ADDR": f"127.0.0.1:{free_port()}",
            "MIRAGE_MEDIA_ADDR": f"127.0.0.1:{free_port()}",
            "MIRAGE_SRT_ADDR": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
            "MIRAGE_RTSP_ADDR": f"127.0.0.1:{free_port()}",
            "MIRAGE_APP_PORT": str(free_port()),
            "MIRAGE_FAKE_STRIPE_PORT": str(free_port()),
        })
        env.pop("MIRAGE_STRIPE_SECRET_KEY", None)
        env.update(env_overrides)
        # A scratch root (tools/ only) so that a run that went too far creates var/ there, not in the checkout.
        with tempfile.TemporaryDirectory() as root:
            (pathlib.Path(root) / "tools").mkdir()
            for name in ("run-dev.sh", "check-ports"):
                target = pathlib.Path(root) / "tools" / name
                target.write_bytes((ROOT / "tools" / name).read_bytes())
                target.chmod(0o755)
            p = subprocess.run(["bash", str(pathlib.Path(root) / "tools" / "run-dev.sh"), "/nonexistent-build"],
                               env=env, capture_output=True, text=True, timeout=60)
            self.assertFalse((pathlib.Path(root) / "var").exists(), "run-dev.sh started something: var/ exists")
        return p

    def assert_refused(self, p, port, what, variable):
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(f"port {port} ", p.stderr)
        self.assertIn(what, p.stderr)
        self.assertIn(variable, p.stderr)
        self.assertNotIn("Open http", p.stdout, "a URL was printed")

    def test_app_port_taken(self):
        with Held() as held:
            p = self.run_dev(MIRAGE_APP_PORT=str(held.port))
        self.assert_refused(p, held.port, "the web app", "MIRAGE_APP_PORT")

    def test_postgres_port_taken(self):
        with Held() as held:
            p = self.run_dev(MIRAGE_PG_PORT=str(held.port))
        self.assert_refused(p, held.port, "PostgreSQL", "MIRAGE_PG_PORT")

    def test_api_and_media_ports_taken_are_both_named(self):
        with Held() as api, Held() as media:
            p = self.run_dev(MIRAGE_HTTP_ADDR=f"127.0.0.1:{api.port}", MIRAGE_MEDIA_ADDR=f"127.0.0.1:{media.port}")
        self.assert_refused(p, api.port, "the API", "MIRAGE_HTTP_ADDR")
        self.assert_refused(p, media.port, "the media worker", "MIRAGE_MEDIA_ADDR")

    def test_srt_udp_port_taken(self):
        with Held(socket.SOCK_DGRAM) as held:
            p = self.run_dev(MIRAGE_SRT_ADDR=f"127.0.0.1:{held.port}")
        self.assert_refused(p, held.port, "SRT ingest", "MIRAGE_SRT_ADDR")

    def test_fake_stripe_port_taken(self):
        with Held() as held:
            p = self.run_dev(MIRAGE_FAKE_STRIPE_PORT=str(held.port))
        self.assert_refused(p, held.port, "the fake Stripe", "MIRAGE_FAKE_STRIPE_PORT")

    def test_free_ports_and_time_wait_pass(self):
        # A connection closed by this side leaves its server port in TIME_WAIT.
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: TIME_WAIT is on the server's port
        client.close()
        server.close()
        p = subprocess.run([str(CHECK), f"x=tcp:127.0.0.1:{port}:X", f"y=udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}:Y"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")

    def test_ipv6_loopback(self):
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback here")
        s.listen()
        with s:
            port = s.getsockname()[1]
            p = subprocess.run([str(CHECK), f"the API=tcp:[::1]:{port}:MIRAGE_HTTP_ADDR"],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"port {port} ", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
