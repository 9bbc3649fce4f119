#!/usr/bin/env python3
"""Writes hot-text.ld, the linker script that puts the code `tern serve` runs next to each other.

`make hot-text` builds the release binary with a link map and runs this. It starts that binary under Valgrind's
callgrind, as `tern bench` starts it (set-up calls, a second idle), then again with events published to a local
receiver, on SQLite and, given --postgres, on PostgreSQL; finds the input section (function) holding each function
that ran, through the link map; and lists those sections, the ones an idle server ran first, each group hottest
first. Linked in one output section before `.text`, they share a few MiB of pages instead of touching pages all over
the binary's 38 MiB of code: those pages are what an idle server's resident memory mostly is (docs/benchmarks.md).
"""
import argparse, base64, bisect, collections, http.client, http.server, json, os, re, signal, socket, subprocess
import shutil, sys, tempfile, threading, time


def tool(name):
    """The toolchain's LLVM tool, or binutils' when it has none."""
    return shutil.which('llvm-' + name) or name


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.send_response(204)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


def call(port, method, path, key, body=None):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=600)
    headers = {'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json'}
    connection.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = connection.getresponse()
    text = response.read()
    if response.status >= 300:
        raise SystemExit(f'{method} {path}: {response.status} {text[:300]!r}')
    return json.loads(text) if response.getheader('Content-Type', '').startswith('application/json') else {}


def session(binary, database, out, receiver_port, events):
    """One run of `tern serve` under callgrind: start, the bench rig's set-up, a second idle, `events` publishes."""
    port, admin = free_port(), 'hot-text-admin-' + base64.urlsafe_b64encode(os.urandom(18)).decode()
    environment = dict(
        os.environ, TERN_DATABASE_URL=database, TERN_PORT=str(port), TERN_ADMIN_KEY=admin,
        TERN_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode(), TERN_ALLOW_PRIVATE_ENDPOINTS='true',
        TERN_LOG_LEVEL='error', TERN_RESOURCES_DIR=os.getcwd())
    server = subprocess.Popen(
        ['valgrind', '--tool=callgrind', '--demangle=no', '--callgrind-out-file=' + out, binary, 'serve'],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            try:
                http.client.HTTPConnection('127.0.0.1', port, timeout=5).request('GET', '/livez')
                break
            except OSError:
                time.sleep(0.25)
        limits = {'rate_limit_per_minute': None, 'max_messages_per_month': None, 'max_endpoints': None, 'max_applications': None}
        call(port, 'PUT', '/v1/admin/plans/hot-text', admin, dict(name='Hot text', **limits))
        org = call(port, 'POST', '/v1/admin/organizations', admin, {'name': 'hot-text', 'plan': 'hot-text'})['id']
        setup = call(port, 'POST', f'/v1/admin/organizations/{org}/api-keys', admin, {'name': 'setup'})['key']
        app = call(port, 'POST', '/v1/applications', setup, {'name': 'hot-text'})['id']
        key = call(port, 'POST', f'/v1/admin/organizations/{org}/api-keys', admin, {'name': 'run', 'application_id': app})['key']
        call(port, 'POST', f'/v1/applications/{app}/event-types', key, {'name': 'hot.event'})
        call(port, 'POST', f'/v1/applications/{app}/endpoints', key,
             {'tenant_id': 'tenant-1', 'url': f'http://127.0.0.1:{receiver_port}/hook'})
        time.sleep(1)
        event = {'event_type': 'hot.event', 'tenant_id': 'tenant-1', 'payload': {'data': 'x' * 1000}}

        def publish(count):
            for _ in range(count):
                call(port, 'POST', f'/v1/applications/{app}/events', key, event)
                call(port, 'GET', '/livez', key)
        publishers = [threading.Thread(target=publish, args=(events // 8,)) for _ in range(8)]
        for thread in publishers:
            thread.start()
        for thread in publishers:
            thread.join()
        time.sleep(20 if events else 0)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=300)


def executed(path, binary):
    """The functions of `binary` a callgrind profile ran, name (or 0x-address when it has none) -> own cost."""
    objects, functions, cost = {}, {}, collections.Counter()
    current_object = current = called_object = None
    skip = False
    for line in open(path, errors='replace'):
        line = line.rstrip('\n')
        match = re.match(r'^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$', line)
        if match:
            kind, ident, name = match.groups()
            table = objects if kind.endswith('ob') else functions
            if name is not None:
                table[ident] = re.sub(r"'\d+$", '', name)
            if kind == 'ob':
                current_object = objects[ident]
            elif kind == 'cob':
                called_object = objects[ident]
            else:
                function = ((called_object if kind == 'cfn' else None) or current_object, functions[ident])
                cost[function] += 0
                called_object = None
                if kind == 'fn':
                    current = function
            continue
        if line.startswith('calls='):
            skip = True
        elif line[:1].isdigit() or line[:1] in '+-*':
            parts = line.split()
            if not skip and current and len(parts) >= 2:
                cost[current] += int(parts[1])
            skip = False
    # Code in a second executable section (an earlier hot-text layout's) is put down to an object callgrind calls ???.
    ours = lambda obj: obj == '???' or (obj and os.path.realpath(obj) == os.path.realpath(binary))
    return {name: c for (obj, name), c in cost.items() if ours(obj)}


def text_sections(map_path):
    """The input sections the link map places in `.text` (or `.text.hot`): (address, size, file, section)."""
    sections, in_text = [], False
    for line in open(map_path):
        parts = line.split(None, 4)
        if len(parts) < 5 or not re.match(r'^[0-9a-f]+$', parts[0]):
            continue
        name = parts[4].strip()
        if ':(' in name:
            if in_text:
                file, section = name.rsplit(':(', 1)
                sections.append((int(parts[0], 16), int(parts[2], 16), file, section[:-1]))
        elif len(line) - len(line.lstrip(' ')) < 20 and name.startswith('.'):
            in_text = name == '.text' or name.startswith('.text.')  # and an earlier hot-text layout's section
    return sorted(sections)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--binary', required=True, help='the release `tern`, linked with -Map')
    parser.add_argument('--map', required=True, help="that link's map")
    parser.add_argument('--postgres', help='an empty PostgreSQL database to run on as well')
    parser.add_argument('--events', type=int, default=400)
    parser.add_argument('--out', required=True)
    arguments = parser.parse_args()
    work = tempfile.mkdtemp(prefix='tern-hot-text-')
    binary = os.path.join(work, 'tern')
    subprocess.run([tool('objcopy'), '--strip-debug', arguments.binary, binary], check=True)  # Valgrind cannot read its DWARF 5.
    receiver_port = free_port()
    receiver = http.server.ThreadingHTTPServer(('127.0.0.1', receiver_port), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    databases = ['sqlite://' + os.path.join(work, 'hot-text.sqlite')] + ([arguments.postgres] if arguments.postgres else [])
    idle, load = {}, collections.Counter()
    for number, database in enumerate(databases):
        for events, profile in ((0, idle), (arguments.events, load)):
            out = os.path.join(work, f'{number}-{events}.callgrind')
            print(f'callgrind: {database.split(":")[0]}, {events} events', file=sys.stderr)
            session(binary, database, out, receiver_port, events)
            profile.update(executed(out, binary))
            os.remove(out)

    shutil.rmtree(work)
    sections = text_sections(arguments.map)
    starts = [s[0] for s in sections]
    addresses = collections.defaultdict(list)
    for line in subprocess.run([tool('nm'), '--defined-only', arguments.binary], capture_output=True, text=True).stdout.splitlines():
        parts = line.split(' ', 2)
        if len(parts) == 3 and parts[1] in 'tTwW':
            addresses[parts[2]].append(int(parts[0], 16))

    def holding(name):
        for address in [int(name, 16)] if name.startswith('0x') else addresses.get(name, []):
            index = bisect.bisect_right(starts, address) - 1
            if index >= 0 and sections[index][0] <= address < sections[index][0] + max(sections[index][1], 1):
                yield sections[index]

    rank = {}
    for group, names in ((0, idle), (1, load)):
        for name in names:
            for section in holding(name):
                rank[section] = min(rank.get(section, (group, 0)), (group, -load.get(name, 0)))
    patterns, seen = [], set()
    for address, size, file, section in sorted(rank, key=lambda s: (rank[s], s[0])):
        if section.startswith('.text.'):
            pattern = f'*({section})'  # every copy of the function, whichever object it came from
        else:
            member = re.match(r'.*/([^/]+\.a)\(([^)]+)\)$', file)
            pattern = (f'*{member.group(1)}:{member.group(2)}' if member else '*' + file.rsplit('/', 1)[-1]) + f'({section})'
        if pattern not in seen:
            seen.add(pattern)
            patterns.append(pattern)
    with open(arguments.out, 'w') as out:
        out.write('/* The code `tern serve` runs, idle first: written by `make hot-text` (Sources/tern/Link/hot_text.py). */\n')
        out.write('SECTIONS\n{\n  .text.hot : {\n')
        out.writelines(f'    {pattern}\n' for pattern in patterns)
        out.write('  }\n}\nINSERT BEFORE .text;\n')
    print(f'{len(patterns)} sections, {sum(s[1] for s in rank) / 2**20:.1f} MiB of code, to {arguments.out}', file=sys.stderr)


if __name__ == '__main__':
    main()
