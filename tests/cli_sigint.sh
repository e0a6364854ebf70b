#!/usr/bin/env bash
# ctest cli_sigint: Ctrl-C and Ctrl-D on a real terminal (a pty), as a user types them.
#   - one-shot: Ctrl-C ends the generation, the statistics are still printed, exit 0;
#   - chat: Ctrl-C stops the reply and the prompt comes back; the conversation goes on;
#     Ctrl-C twice at the prompt quits; Ctrl-D at the prompt quits.
# usage: cli_sigint.sh path/to/vkmix [model.gguf]   (default: TinyStories-656K, else the shipped
# stories260K; the model is asked for a whole context without end-of-story tokens, and Ctrl-C
# comes well before that)
set -u
VKMIX=$1
M=${2:-${VKMIX_SHARED_DIR:-../shared}/models/tinystories-656k/TinyStories-656K-Q8_0.gguf}
# without ../shared: the shipped stories260K (a 2048-token context: still well after Ctrl-C)
[ -f "$M" ] || [ -n "${2:-}" ] || M=${VKMIX_SOURCE_DIR:-.}/assets/stories260K-f16.gguf
[ -f "$M" ] || { echo "skip: $M missing"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
exec python3 - "$VKMIX" "$M" <<'PY'
import os, pty, select, sys, time

vkmix, model = sys.argv[1], sys.argv[2]
fails = 0

def fail(msg):
    global fails
    fails += 1
    print("FAIL:", msg)

class Term:
    """vkmix on a pty: stdin, stdout and stderr are the terminal."""
    def __init__(self, args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(vkmix, [vkmix, "-m", model] + args)
        self.buf = b""
        self.pos = 0  # read_until looks for its pattern after the previous match
    def read_until(self, pat, timeout=60):
        end = time.time() + timeout
        while pat.encode() not in self.buf[self.pos:]:
            left = end - time.time()
            if left <= 0:
                return False
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    return False
                self.buf += data
        self.pos = self.buf.index(pat.encode(), self.pos) + len(pat)
        return True
    def send(self, s):
        os.write(self.fd, s.encode())
    def wait(self, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            pos = self.pos
            self.read_until("\0never\0", 0.2)
            self.pos = pos
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        return None
    def text(self):
        return self.buf.decode("utf-8", "replace")

# one-shot: a long generation (no end-of-story token, the whole context) stopped by Ctrl-C
t = Term(["-p", "Once upon a time", "--ignore-eos", "--seed", "1"])
if not t.read_until("Once upon a time"):
    fail("one-shot: no output: " + t.text())
time.sleep(0.2)
t.send("\x03")
rc = t.wait()
if rc != 0:
    fail("one-shot: Ctrl-C exited %r: %s" % (rc, t.text()[-500:]))
if "interrupted" not in t.text() or "generated " not in t.text():
    fail("one-shot: no 'interrupted' and statistics after Ctrl-C: " + t.text()[-500:])
if "context is full" in t.text():
    fail("one-shot: the generation ended before Ctrl-C; nothing was tested")
print("one-shot transcript (end):", t.text()[-300:])

# chat (raw mode): stop a reply, go on, Ctrl-C twice to quit
t = Term(["-i", "--ignore-eos", "--seed", "1"])
if not t.read_until("> "):
    fail("chat: no prompt: " + t.text())
t.send("Once upon a time\r")
t.read_until(" ", 30)  # the reply has started
time.sleep(0.2)
t.send("\x03")
if not t.read_until("[stopped]"):
    fail("chat: Ctrl-C did not stop the reply: " + t.text()[-500:])
if not t.read_until("\n> "):
    fail("chat: no prompt after the stopped reply")
t.send("\x03")
if not t.read_until("Ctrl-C again"):
    fail("chat: the first Ctrl-C at the prompt gave no hint: " + t.text()[-300:])
t.send("\x03")
rc = t.wait()
print("chat transcript (end):", t.text()[-400:])
if rc != 0:
    fail("chat: Ctrl-C twice exited %r: %s" % (rc, t.text()[-500:]))
if "generated " not in t.text():
    fail("chat: no statistics at the end")

# chat: Ctrl-D at the prompt quits
t = Term(["-i", "-n", "4"])
if not t.read_until("> "):
    fail("chat: no prompt")
t.send("\x04")
rc = t.wait()
if rc != 0:
    fail("chat: Ctrl-D exited %r" % (rc,))

print("cli_sigint: %s" % ("all checks passed" if not fails else "%d failures" % fails))
sys.exit(1 if fails else 0)
PY
