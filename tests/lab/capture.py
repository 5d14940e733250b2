"""``python -m tests.lab.capture FILE``: every frame on every interface of this namespace, appended raw to
FILE until SIGTERM (an AF_PACKET socket, what tcpdump uses; run in the lab's bridge namespace it sees
all traffic between the hosts). Prints ``capturing`` once the socket is open."""

from __future__ import annotations

import signal
import socket
import sys

ETH_P_ALL = 0x0003


def main() -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))  # type: ignore[attr-defined]
    out = open(sys.argv[1], "wb")  # noqa: SIM115 - closed by the SIGTERM handler

    def stop(*_args: object) -> None:
        out.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("capturing", flush=True)
    while True:
        frame = sock.recv(65536)
        out.write(frame)


if __name__ == "__main__":
    main()
