// The operator types announcements on the server's terminal: each line goes to every chat
// member. One process or a cluster primary alike; each passes how it announces.
import { createInterface } from 'node:readline';

/** `announce` returns how many members heard it. Does nothing unless stdin is a terminal. */
export function announceFromTerminal(announce: (text: string) => number, log: (line: string) => void): void {
  if (!process.stdin.isTTY) return;
  log('muxd: type a line and press Enter to announce it to every MX/1 chat member');
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    const text = line.trim();
    if (text === '') return;
    const recipients = announce(text);
    log(`muxd: announced to ${recipients} member${recipients === 1 ? '' : 's'}`);
  });
}
