// Content-Type per file name: the `mime` package's table, with a charset on text types only
// (a charset on image/png is meaningless; on text it stops browsers from guessing).
import mime from 'mime';

const OCTET_STREAM = 'application/octet-stream';

/** The Content-Type field value for a file name, e.g. "text/css; charset=utf-8". */
export function contentTypeFor(name: string): string {
  const type = mime.getType(name);
  if (type === null) return OCTET_STREAM;
  return isTextType(type) ? type + '; charset=utf-8' : type;
}

/** text/*, JavaScript, JSON, XML and their +json / +xml kin (SVG, web manifests). */
export function isTextType(type: string): boolean {
  return (
    type.startsWith('text/') ||
    type.endsWith('javascript') ||
    type.endsWith('json') ||
    type.endsWith('xml')
  );
}

/** Worth precompressing: text types (images, archives and fonts are compressed already). */
export function isCompressible(name: string): boolean {
  const type = mime.getType(name);
  return type !== null && (isTextType(type) || type === 'image/vnd.microsoft.icon' || type === 'application/wasm');
}
