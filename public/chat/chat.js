// The chat page: one WebSocket carrying MX/1 (subprotocol mx1, one frame per binary message),
// the room's members and messages as they happen, and a reconnect with backoff (1 s doubling
// to 30 s) that rejoins with the same name. Everything from the network reaches the page as
// textContent, never as HTML.
import {
  ErrorCode, Ids, MAX_TEXT_BYTES, backoffMs, decodeMessage, encodeJoin, encodeLeave, encodePing, encodeSay, socketUrl, utf8Length,
} from './mx.js';

const URL_ = socketUrl(location);
/** A request without an answer for this long means the connection is dead: drop it and reconnect. */
const REQUEST_TIMEOUT_MS = 10_000;
/** While joined, a PING this often finds a connection that died without a close (no FIN seen). */
const KEEPALIVE_MS = 25_000;
/** The log keeps this many lines; older ones go, so a busy room cannot grow the page forever. */
const MAX_LOG_LINES = 500;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const statusEl = $('status');
const retryButton = /** @type {HTMLButtonElement} */ ($('retry'));
const joinForm = /** @type {HTMLFormElement} */ ($('join-form'));
const nameInput = /** @type {HTMLInputElement} */ ($('name'));
const nameError = $('name-error');
const room = $('room');
const membersEl = $('members');
const memberCount = $('member-count');
const logEl = $('log');
const sayForm = /** @type {HTMLFormElement} */ ($('say-form'));
const textInput = /** @type {HTMLInputElement} */ ($('text'));
const textError = $('text-error');
const leaveButton = /** @type {HTMLButtonElement} */ ($('leave'));

const ids = new Ids();
/** @type {WebSocket | null} */
let ws = null;
let open = false;
/** The name we are joined as (NFC, as the server shows it), or null. */
let joinedAs = null;
/** The name to rejoin with after a lost connection; set by a successful JOIN, cleared by Leave. */
let rejoinName = null;
/** A JOIN typed while no connection was open: sent once it opens. */
let queuedJoin = null;
let attempt = 0;
let retryTimer = 0;
let retryAt = 0;
let countdownTimer = 0;
let keepaliveTimer = 0;
/** @type {string[]} */
let members = [];
/** Requests in flight: id -> { onReply, timer }. */
const pending = new Map();

// ---------------------------------------------------------------- the connection

function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  retryButton.hidden = true;
  if (ws) return;
  setStatus('connecting', rejoinName ? `Reconnecting as ${rejoinName}…` : 'Connecting…');
  let socket;
  try {
    socket = new WebSocket(URL_, 'mx1');
  } catch (err) {
    // A malformed URL: nothing to retry.
    setStatus('offline', `Cannot connect: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  ws = socket;
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => {
    if (ws !== socket) return;
    open = true;
    if (rejoinName) sendJoin(rejoinName, true);
    else if (queuedJoin) sendJoin(queuedJoin, false);
    else setStatus('online', 'Connected. Pick a name to join.');
  };
  socket.onmessage = (e) => {
    if (ws !== socket) return;
    if (!(e.data instanceof ArrayBuffer)) return lost('the server sent text, which MX/1 never is');
    let event;
    try {
      event = decodeMessage(e.data);
    } catch (err) {
      return lost(`the server sent a bad frame (${err instanceof Error ? err.message : String(err)})`);
    }
    handle(event);
  };
  socket.onclose = (e) => {
    if (ws !== socket) return;
    lost(e.code === 1001 ? 'the server is going away' : 'the connection closed', !open);
  };
}

/**
 * The connection is gone (or we gave up on it). Joined: say we are away and come back with
 * backoff. Not joined: stay quiet until the next Join asks for a connection.
 * @param {string} why @param {boolean} [neverOpened]
 */
function lost(why, neverOpened = false) {
  const socket = ws;
  ws = null;
  open = false;
  if (socket) {
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      socket.close();
    } catch {
      // already closed
    }
  }
  clearInterval(keepaliveTimer);
  for (const [, req] of pending) {
    clearTimeout(req.timer);
    req.onLost?.();
  }
  pending.clear();
  if (joinedAs !== null) {
    addEvent('away', `Connection lost: ${why}. Reconnecting…`);
    joinedAs = null;
    membersEl.classList.add('stale');
  }
  if (rejoinName !== null) {
    scheduleReconnect();
    return;
  }
  if (queuedJoin !== null) {
    showNameError(neverOpened ? 'Cannot reach the chat server. Try again in a moment.' : `The connection closed before the server answered (${why}). Try again.`);
    queuedJoin = null;
  }
  setStatus('offline', 'Not connected. Joining connects again.');
}

function scheduleReconnect() {
  const delay = backoffMs(attempt++);
  retryAt = Date.now() + delay;
  retryTimer = window.setTimeout(connect, delay);
  // The status (a live region) is said once; the countdown ticks on the button, which a screen
  // reader reads when it gets the focus instead of every second.
  setStatus('away', `Away: connection lost. You will rejoin as ${rejoinName} as soon as the server is back.`);
  const tick = () => {
    const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
    retryButton.textContent = `Reconnect now (next try in ${seconds} s)`;
  };
  tick();
  clearInterval(countdownTimer);
  countdownTimer = window.setInterval(tick, 1000);
  retryButton.hidden = false;
}

/**
 * Sends a request; onReply gets its answer (a reply or an error event).
 * @param {(id: number) => Uint8Array} encode
 * @param {(event: import('./mx.js').MxEvent) => void} onReply
 * @param {() => void} [onLost] called if the connection goes before the answer
 */
function request(encode, onReply, onLost) {
  if (!ws || !open) {
    onLost?.();
    return;
  }
  const id = ids.next();
  const timer = window.setTimeout(() => lost('the server stopped answering'), REQUEST_TIMEOUT_MS);
  pending.set(id, { onReply, onLost, timer });
  ws.send(encode(id));
}

/** @param {import('./mx.js').MxEvent} event */
function handle(event) {
  switch (event.kind) {
    case 'userJoined':
      if (!members.includes(event.name)) members.push(event.name);
      renderMembers();
      addEvent('join', `${event.name} joined`);
      return;
    case 'userLeft':
      members = members.filter((m) => m !== event.name);
      renderMembers();
      addEvent('leave', `${event.name} left`);
      return;
    case 'message':
      addMessage(event.from, event.text, false);
      return;
    case 'announcement':
      addEvent('announcement', event.text, 'Announcement: ');
      return;
    case 'unknown':
      return; // a type this page does not know: ignored, as docs/protocol.md asks of clients
    default: {
      const req = pending.get(event.id);
      if (!req) {
        // Id 0 errors are about the connection (ERROR 1, 2, 51 at accept): the server closes it.
        if (event.kind === 'error') addEvent('error', `Server: error ${event.code}: ${event.message}`);
        return;
      }
      pending.delete(event.id);
      clearTimeout(req.timer);
      req.onReply(event);
    }
  }
}

// ---------------------------------------------------------------- joining and leaving

/** @param {string} name @param {boolean} rejoining */
function sendJoin(name, rejoining) {
  queuedJoin = null;
  setStatus('connecting', rejoining ? `Rejoining as ${name}…` : `Joining as ${name}…`);
  request((id) => encodeJoin(id, name), (event) => {
    if (event.kind === 'joined') return joined(name.normalize('NFC'), event.names, rejoining);
    if (event.kind !== 'error') return lost(`unexpected answer to JOIN (${event.kind})`);
    if (rejoining && (event.code === ErrorCode.BUSY || event.code === ErrorCode.RELAY_UNAVAILABLE)) {
      // Retryable: the same name again after the next backoff step.
      addEvent('error', `Could not rejoin yet: ${event.message}`);
      return lost('rejoin refused for now');
    }
    if (rejoining) {
      // The name went to someone else while we were away: choose again.
      rejoinName = null;
      attempt = 0;
      clearInterval(countdownTimer);
      retryButton.hidden = true;
      addEvent('error', `Could not rejoin as ${name}: ${event.message}`);
      room.hidden = true;
      joinForm.hidden = false;
      nameInput.value = name;
      showNameError(`${sentence(event.message)} Choose another name.`);
    } else {
      showNameError(describeJoinError(event.code, event.message, name));
    }
    setStatus('online', 'Connected. Pick a name to join.');
  }, () => {
    if (!rejoining) showNameError('The connection closed before the server answered. Try again.');
  });
}

/** @param {number} code @param {string} message @param {string} name */
function describeJoinError(code, message, name) {
  if (code === ErrorCode.NAME_TAKEN) return `“${name}” is taken. Choose another name.`;
  if (code === ErrorCode.BAD_NAME) return `${sentence(message)} Choose another name.`;
  if (code === ErrorCode.BUSY || code === ErrorCode.RELAY_UNAVAILABLE) return `${sentence(message)} Try again in a moment.`;
  return `Error ${code}: ${message}`;
}

/** The server's message as a sentence: capitalised, with a full stop. @param {string} text */
function sentence(text) {
  const s = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** @param {string} name @param {string[]} names @param {boolean} rejoining */
function joined(name, names, rejoining) {
  joinedAs = name;
  rejoinName = name;
  attempt = 0;
  clearInterval(countdownTimer);
  retryButton.hidden = true;
  members = names.slice();
  membersEl.classList.remove('stale');
  renderMembers();
  clearNameError();
  joinForm.hidden = true;
  room.hidden = false;
  if (rejoining) {
    addEvent('back', `Reconnected: rejoined as ${name}.`);
  } else {
    addEvent('back', `You joined as ${name}. ${names.length === 1 ? 'Nobody else is here yet.' : `Here: ${names.join(', ')}.`}`);
    textInput.focus();
  }
  setStatus('joined', `Connected as ${name}.`);
  clearInterval(keepaliveTimer);
  keepaliveTimer = window.setInterval(() => request((id) => encodePing(id), () => {}), KEEPALIVE_MS);
}

joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = nameInput.value.trim();
  if (name === '') return showNameError('Type a name first.');
  clearNameError();
  if (ws && open) sendJoin(name, false);
  else {
    queuedJoin = name;
    connect();
  }
});

leaveButton.addEventListener('click', () => {
  const leaving = joinedAs;
  rejoinName = null; // whatever happens next, do not come back by ourselves
  const done = () => {
    joinedAs = null;
    members = [];
    renderMembers();
    room.hidden = true;
    joinForm.hidden = false;
    if (leaving) addEvent('leave', `You left as ${leaving}.`);
    clearInterval(keepaliveTimer);
    if (ws) lost('you left');
    setStatus('offline', 'You left the room. Join again with any name.');
    nameInput.focus();
  };
  if (ws && open && joinedAs) request((id) => encodeLeave(id), done, done);
  else {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    retryButton.hidden = true;
    done();
  }
});

retryButton.addEventListener('click', () => connect());

// ---------------------------------------------------------------- saying

sayForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = textInput.value;
  if (text.trim() === '') return;
  const bytes = utf8Length(text);
  if (bytes > MAX_TEXT_BYTES) return showTextError(`Too long: ${bytes} bytes; a message is at most ${MAX_TEXT_BYTES}.`);
  if (!ws || !open || joinedAs === null) return showTextError('Not connected right now; your message is kept here. It can be sent once you are back.');
  clearTextError();
  const line = addMessage(joinedAs, text, true);
  line.dataset.state = 'sending';
  textInput.value = '';
  request((id) => encodeSay(id, text), (event) => {
    if (event.kind === 'said') {
      line.dataset.state = 'sent';
    } else {
      line.dataset.state = 'failed';
      note(line, event.kind === 'error' ? `not sent: ${event.message}` : 'not sent');
    }
  }, () => {
    line.dataset.state = 'failed';
    note(line, 'not confirmed: the connection closed');
  });
});

// ---------------------------------------------------------------- the view (textContent only)

/** @param {string} state @param {string} text */
function setStatus(state, text) {
  statusEl.dataset.state = state;
  if (statusEl.textContent !== text) statusEl.textContent = text;
}

function renderMembers() {
  const items = members.map((name) => {
    const li = document.createElement('li');
    const bdi = document.createElement('bdi');
    bdi.textContent = name;
    li.append(bdi);
    if (name === joinedAs || name === rejoinName) {
      li.className = 'me';
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = ' (you)';
      li.append(you);
    }
    return li;
  });
  membersEl.replaceChildren(...items);
  memberCount.textContent = String(members.length);
}

function stamp() {
  const now = new Date();
  const t = document.createElement('time');
  t.dateTime = now.toISOString();
  t.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return t;
}

/** @param {HTMLLIElement} li */
function append(li) {
  // Follow the conversation only when the reader is already at the bottom.
  const atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 40;
  logEl.append(li);
  while (logEl.childElementCount > MAX_LOG_LINES) logEl.firstElementChild?.remove();
  if (atBottom) logEl.scrollTop = logEl.scrollHeight;
}

/** @param {string} from @param {string} text @param {boolean} mine */
function addMessage(from, text, mine) {
  const li = document.createElement('li');
  li.className = mine ? 'msg me' : 'msg';
  // <bdi>: a name in a right-to-left script (or with direction marks) cannot reorder the line around it.
  const who = document.createElement('bdi');
  who.className = 'from';
  who.textContent = from;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(stamp(), ' ', who, ' ', body);
  append(li);
  return li;
}

/** @param {string} kind @param {string} text @param {string} [label] */
function addEvent(kind, text, label) {
  const li = document.createElement('li');
  li.className = `event ${kind}`;
  const body = document.createElement('span');
  body.className = 'text';
  if (label) {
    const strong = document.createElement('strong');
    strong.textContent = label;
    body.append(strong);
  }
  body.append(text);
  li.append(stamp(), ' ', body);
  append(li);
}

/** @param {HTMLElement} line @param {string} text */
function note(line, text) {
  const span = document.createElement('span');
  span.className = 'note';
  span.textContent = ` (${text})`;
  line.append(span);
}

/** @param {string} text */
function showNameError(text) {
  nameError.textContent = text;
  nameError.hidden = false;
  nameInput.setAttribute('aria-invalid', 'true');
  nameInput.focus();
  nameInput.select();
}

function clearNameError() {
  nameError.hidden = true;
  nameError.textContent = '';
  nameInput.removeAttribute('aria-invalid');
}

/** @param {string} text */
function showTextError(text) {
  textError.textContent = text;
  textError.hidden = false;
  textInput.setAttribute('aria-invalid', 'true');
}

function clearTextError() {
  textError.hidden = true;
  textError.textContent = '';
  textInput.removeAttribute('aria-invalid');
}

textInput.addEventListener('input', () => {
  if (!textError.hidden) clearTextError();
});

setStatus('offline', 'Pick a name to join the room.');
document.documentElement.dataset.js = 'ready';
