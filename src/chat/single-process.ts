// `muxd serve --chat-redis URL` without workers: the one process is both the room (RelayedRoom)
// and the hub's only owner (RedisHub), linked in memory. Events go down on a microtask, so a hub
// answer never re-enters the room in the middle of its own fan-out; order is kept (FIFO).
import type { Room } from './room.js';
import type { Metrics } from '../loop/metrics.js';
import { RelayedRoom } from './relayed-room.js';
import { RedisHub } from './redis-hub.js';

const OWNER = 1;

export interface SingleProcessRelay {
  room(metrics: Metrics): Room;
  state(): Record<string, unknown>;
  close(): Promise<void>;
}

export function redisRelay(url: string, maxOutputBytes: number, log: (line: string) => void): SingleProcessRelay {
  let room: RelayedRoom | null = null;
  const hub = new RedisHub({
    url,
    log,
    out: { send: (_owner, down) => queueMicrotask(() => room?.apply(down)) },
  });
  return {
    room: (metrics) => {
      room = new RelayedRoom((up) => hub.handle(OWNER, up), maxOutputBytes, (member, reason, slow) => {
        if (slow) metrics.count('binary.slowConsumersDropped');
        log(`binary: dropped ${member.name}: ${reason}`);
      });
      hub.attach(OWNER);
      return room;
    },
    state: () => hub.state(),
    close: () => hub.close(),
  };
}
