"""The nginx gateway's configuration, rendered from ``docker/nginx/tradeops.conf.template``.

One template serves the plain-process cluster (``scripts/cluster.sh``), the gateway tests and
the compose file's ``gateway`` service (``docker/nginx/tradeops.conf``, written by
``python -m tradeops.topology compose --write`` and checked by the topology test).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "docker" / "nginx" / "tradeops.conf.template"
FALLBACK_ROOT = ROOT / "docker" / "nginx" / "fallback"
COMPOSE_CONFIG = ROOT / "docker" / "nginx" / "tradeops.conf"


@dataclass(frozen=True)
class GatewayConfig:
    run_dir: str  # pid file, logs and nginx's temporary files
    cert_dir: str  # server.crt, server.key, client-ca.crt
    upstream: str = "127.0.0.1:18000"  # the web tier
    listen_host: str = "127.0.0.1"
    https_port: int = 18443
    http_port: int = 18080
    public_https_port: int = 0  # where the HTTP redirect points (default: https_port)
    fallback_root: str = str(FALLBACK_ROOT)
    api_rate: int = 20  # requests per second per integration client (certificate subject)
    api_burst: int = 10
    screen_rate: int = 50  # per address, browsers
    screen_burst: int = 100


def gateway_render(config: GatewayConfig) -> str:
    """The nginx.conf text; every placeholder of the template must be filled."""
    values = {k.upper(): str(v) for k, v in asdict(config).items()}
    values["PUBLIC_HTTPS_PORT"] = str(config.public_https_port or config.https_port)
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    left = sorted(set(re.findall(r"@@([A-Z_]+)@@", text)))
    if left:
        raise ValueError(f"gateway template placeholders not filled: {', '.join(left)}")
    return text


def compose_gateway_config() -> str:
    """What the compose file's nginx container mounts (paths inside that container)."""
    return gateway_render(
        GatewayConfig(
            run_dir="/tmp",  # noqa: S108 - inside the gateway container only
            cert_dir="/etc/nginx/certs",
            upstream="web:8000",
            listen_host="0.0.0.0",  # noqa: S104 - the container's own interface
            https_port=8443,
            http_port=8080,
            public_https_port=443,
            fallback_root="/usr/share/nginx/fallback",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeops.gateway")
    sub = parser.add_subparsers(dest="cmd", required=True)
    render = sub.add_parser("render", help="print nginx.conf for a local gateway")
    render.add_argument("--dir", required=True, help="pid file, logs, temporary files")
    render.add_argument("--certs", required=True, help="server.crt, server.key, client-ca.crt")
    render.add_argument("--upstream", default="127.0.0.1:18000")
    render.add_argument("--https-port", type=int, default=18443)
    render.add_argument("--http-port", type=int, default=18080)
    args = parser.parse_args(argv)
    run_dir = Path(args.dir)
    for sub_dir in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / "tmp" / sub_dir).mkdir(parents=True, exist_ok=True)
    config = GatewayConfig(
        run_dir=str(run_dir),
        cert_dir=args.certs,
        upstream=args.upstream,
        https_port=args.https_port,
        http_port=args.http_port,
    )
    sys.stdout.write(gateway_render(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
