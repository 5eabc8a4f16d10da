// `muxd chat --name NAME`: on a terminal a readline prompt whose typed line survives incoming
// messages; with piped stdin every line is a SAY and EOF leaves. Either way events print live.
import readline from 'node:readline';
import { openClient, stringFlag, UsageError, type ChatClient, type CommandContext } from './client-context.js';
import { describeError } from './client-format.js';

/** "14:03:07" in local time. */
function clock(): string {
  const d = new Date();
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export async function runChat(ctx: CommandContext): Promise<number> {
  const name = stringFlag(ctx, 'name');
  if (name === undefined || name === '') throw new UsageError('--name is required');
  const { stdin, stdout, stderr } = ctx.io;
  const interactive = stdin.isTTY === true && stdout.isTTY === true;

  const client = await openClient(ctx);
  let present: string[];
  try {
    present = await client.join(name);
  } catch (err) {
    await client.close();
    throw err;
  }

  const rl = readline.createInterface({
    input: stdin,
    output: interactive ? stdout : undefined,
    terminal: interactive,
    prompt: `${name}> `,
  });
  /** Prints an event line; on a terminal it goes above the prompt, and the half-typed line is redrawn. */
  const show = (line: string): void => {
    if (interactive) {
      readline.clearLine(stdout, 0);
      readline.cursorTo(stdout, 0);
      stdout.write(line + '\n');
      rl.prompt(true);
    } else {
      stdout.write(line + '\n');
    }
  };

  client.on('userJoined', (who: string) => show(`[${clock()}] * ${who} joined`));
  client.on('userLeft', (who: string) => show(`[${clock()}] * ${who} left`));
  client.on('message', (from: string, text: string) => show(`[${clock()}] <${from}> ${text}`));
  client.on('announcement', (text: string) => show(`[${clock()}] ** announcement: ${text}`));
  let lostConnection = false;
  let leaving = false;
  client.on('error', () => {}); // the close below reports it
  client.on('close', () => {
    if (!leaving) {
      lostConnection = true;
      rl.close();
    }
  });
  rl.on('SIGINT', () => rl.close());

  // Written before the first prompt exists, so no redraw is needed.
  stdout.write(`[${clock()}] joined as ${name}; present: ${present.join(', ')}\n`);
  if (interactive) {
    stdout.write('Type a message and press Enter; /names lists members; Ctrl-D leaves.\n');
    rl.prompt();
  }

  let status = 0;
  try {
    for await (const line of rl) {
      const text = line.trimEnd();
      try {
        if (text === '/names') show(`[${clock()}] present: ${(await client.names()).join(', ')}`);
        else if (text === '/quit') break;
        else if (text !== '') await client.say(text);
      } catch (err) {
        // A refused line (too long, ...) is reported but does not end the session; a closed one does.
        if (client.isClosed) throw err;
        show(describeError(err, ctx.where));
      }
      if (interactive) rl.prompt();
    }
    if (lostConnection) {
      stderr.write(`muxd: connection to ${ctx.where} closed by the server\n`);
      status = 1;
    } else {
      leaving = true;
      await client.leave();
    }
  } finally {
    rl.close();
    leaving = true;
    await closeQuietly(client);
  }
  return status;
}

async function closeQuietly(client: ChatClient): Promise<void> {
  try {
    await client.close();
  } catch {
    // already gone
  }
}
