// The MX/1 client library: `import { connect } from 'muxd/client'`. It depends on src/wire only.
export { connect, MuxClient, type ConnectOptions, type FileInfo, type GetOptions, type PutOptions } from './client.js';
export { LocalCode, MuxError } from './errors.js';
export { connectUdp, MuxUdpClient, type UdpConnectOptions } from './udp.js';
export { type DialOptions, type TlsOptions } from './dial.js';
export { WsCloseError } from './ws.js';
