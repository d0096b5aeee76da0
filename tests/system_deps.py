"""Install the Debian packages that some tests use, where this machine can (root and apt-get).

Run by the README's test command before pytest. On a machine without root or apt-get it says
what is missing and how to install it; the tests that need a missing tool then skip, except
under CI (``CI`` set), where they fail so that a missing install step cannot hide.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# command → Debian package
NEEDED = {
    "rtl_433": "rtl-433",
    "chromium": "chromium",
    # The MQTT fleet tests run their own broker, with a password file and an access list.
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",
    # The shared rate limits' tests run their own Redis.
    "redis-server": "redis-server",
    # Several server processes behind a load balancer (deploy/haproxy.cfg).
    "haproxy": "haproxy",
}


def main() -> int:
    missing = {cmd: pkg for cmd, pkg in NEEDED.items() if shutil.which(cmd) is None}
    if not missing:
        return 0
    packages = sorted(set(missing.values()))
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing Debian packages: {' '.join(packages)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        result = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            check=False,
            env=env,
        )
        return result.returncode
    print(
        f"note: {', '.join(missing)} not found; tests that need them will be skipped. "
        f"Install with: sudo apt-get install {' '.join(packages)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
