// The one shape of an error that says what to answer with: a code (an MX/1 error code, an HTTP
// status, a store failure kind, a client's local code) and a message. WireError, StoreError,
// HttpError and the client's MuxError extend it, so callers tell them apart by class and read
// `code` the same way.
//
// It lives in src/loop and imports nothing: src/store (which must not know MX/1, so not src/wire)
// and src/client (which must pull in no server code) may both import this file, and it brings
// nothing else of src/loop with it.

export class CodedError<C extends number | string = number> extends Error {
  readonly code: C;
  constructor(code: C, message: string) {
    super(message);
    this.code = code;
    // The subclass's own name ("WireError", "MuxError", ...) in stacks and util.inspect.
    this.name = new.target.name;
  }
}
