// What a listener announces once it is up, as data: the one place its line is spelled, so a
// cluster primary printing its workers' listeners prints exactly what one process prints.

/** "muxd NAME listening on DISPLAY". */
export interface ReadyListener {
  /** The listener's name: http, binary, udp. */
  name: string;
  /** Its address as the ready line shows it (http://127.0.0.1:8080, a socket path, ...). */
  display: string;
}

export function readyLine(r: ReadyListener): string {
  return `muxd ${r.name} listening on ${r.display}`;
}
