#!/usr/bin/env python3
"""A throwaway PostgreSQL cluster for fault tests: init, start, stop, restart.

usage: pg_cluster.py init|start|stop|restart|destroy DIR PORT

Runs the server as the `postgres` user when called as root (PostgreSQL refuses to run as root). Unblocks every
signal first: a process started from the Swift test runner inherits a blocked signal mask, and a postmaster started
with it never becomes ready.
"""
import glob, os, shutil, signal, subprocess, sys, time

signal.pthread_sigmask(signal.SIG_SETMASK, [])


def bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])
    if not found:
        sys.exit("no PostgreSQL binaries under /usr/lib/postgresql")
    return found[-1]


def run(args, **kwargs):
    if os.getuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


def start(directory, port):
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={directory} -c max_connections=100 -c fsync=off"
    run([f"{bin_dir()}/pg_ctl", "-D", f"{directory}/data", "-l", f"{directory}/log", "-w", "-o", options, "start"])


def stop(directory, mode="fast"):
    run([f"{bin_dir()}/pg_ctl", "-D", f"{directory}/data", "-m", mode, "-w", "stop"])


def main():
    command, directory, port = sys.argv[1], sys.argv[2], sys.argv[3]
    if command == "init":
        os.makedirs(directory, exist_ok=True)
        if os.getuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        run([f"{bin_dir()}/initdb", "-D", f"{directory}/data", "-U", "tern", "--auth=trust"])
        start(directory, port)
        subprocess.run([f"{bin_dir()}/createdb", "-h", "127.0.0.1", "-p", port, "-U", "tern", "tern"], check=True)
    elif command == "start":
        start(directory, port)
    elif command == "stop":
        stop(directory)
    elif command == "restart":
        stop(directory)
        time.sleep(float(os.environ.get("PG_DOWN_SECONDS", "3")))
        start(directory, port)
    elif command == "destroy":
        try:
            stop(directory, "immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
