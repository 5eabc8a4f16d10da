// serve-static ships no types and @types/serve-static is not installed: the bench needs only this.
declare module 'serve-static' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  interface Options {
    index?: string[] | string | false;
    etag?: boolean;
    lastModified?: boolean;
  }
  function serveStatic(root: string, options?: Options): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
  export default serveStatic;
}
