// The static handler's pure parts, table-driven: target parsing, Range, Accept-Encoding,
// entity-tag lists, preconditions, cache classes, content types.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseTarget, directoryLocation, isHidden } from '../../src/http/static/paths.js';
import { parseRange } from '../../src/http/static/range.js';
import { chooseCoding, BR, GZIP, IDENTITY } from '../../src/http/static/encoding.js';
import { etagListMatches, evaluatePreconditions, collectConditions, ifRangeHolds, parseHttpDate } from '../../src/http/static/conditional.js';
import { isFingerprinted, cacheControlFor, DEFAULT_CACHE_CONTROL } from '../../src/http/static/cache-control.js';
import { contentTypeFor } from '../../src/http/static/mime.js';
import { asciiFallback, extValue } from '../../src/http/static/download.js';

describe('parseTarget', () => {
  const ok: [string, string, string[], boolean, string][] = [
    ['root', '/', [], true, ''],
    ['plain file', '/a/b.txt', ['a', 'b.txt'], false, ''],
    ['query kept aside', '/a?x=1&y', ['a'], false, '?x=1&y'],
    ['fragment dropped', '/a#frag', ['a'], false, ''],
    ['query then fragment', '/a?q#f', ['a'], false, '?q'],
    ['collapsed slashes', '//a///b/', ['a', 'b'], true, ''],
    ['space', '/a%20b.txt', ['a b.txt'], false, ''],
    ['ampersand', '/x%26y', ['x&y'], false, ''],
    ['CJK percent-encoded', '/%E6%97%A5%E6%9C%AC.txt', ['日本.txt'], false, ''],
    ['CJK raw UTF-8 bytes (latin1 view)', '/' + Buffer.from('日本.txt').toString('latin1'), ['日本.txt'], false, ''],
    ['double encoding is a literal name', '/%252e%252e', ['%2e%2e'], false, ''],
    ['absolute-form', 'http://example.com/a/b', ['a', 'b'], false, ''],
    ['absolute-form HTTPS upper-case scheme', 'HTTPS://h:8080/x?y', ['x'], false, '?y'],
    ['absolute-form without path', 'http://h', [], true, ''],
    ['dot inside a name', '/a..b', ['a..b'], false, ''],
  ];
  for (const [name, target, segments, trailingSlash, query] of ok) {
    test(name, () => assert.deepEqual(parseTarget(target), { segments, trailingSlash, query }));
  }
  const bad: [string, string][] = [
    ['dot-dot', '/a/../b'],
    ['single dot', '/./a'],
    ['encoded dot-dot', '/%2e%2e/etc/passwd'],
    ['mixed-case encoded dot-dot', '/%2E%2e/x'],
    ['half-encoded dot-dot', '/.%2e/x'],
    ['encoded slash', '/a%2fb'],
    ['encoded backslash', '/a%5cb'],
    ['raw backslash', '/a\\..\\b'],
    ['raw NUL', '/a\u0000b'],
    ['encoded NUL', '/a%00b'],
    ['truncated percent', '/a%2'],
    ['non-hex percent', '/a%zz'],
    ['invalid UTF-8', '/%C3%28'],
    ['overlong UTF-8 dot', '/%C0%AE%C0%AE'],
    ['absolute-form with dot-dot', 'http://h/../../etc/passwd'],
    ['asterisk', '*'],
    ['relative', 'a/b'],
    ['other scheme', 'ftp://h/a'],
  ];
  for (const [name, target] of bad) test(`400: ${name}`, () => assert.deepEqual(parseTarget(target), { error: 400 }));
});

describe('directoryLocation and isHidden', () => {
  test('open-redirect: leading slashes collapse, segments re-encoded', () => {
    assert.equal(directoryLocation(['evil.example', 'x'], ''), '/evil.example/x/');
    assert.equal(directoryLocation(['a b', '&', '日'], '?q=1'), '/a%20b/%26/%E6%97%A5/?q=1');
    assert.equal(directoryLocation(['a'], '?x="<>'), '/a/?x=%22%3C%3E');
  });
  test('dot names hidden, /.well-known only at the top', () => {
    assert.equal(isHidden(['.env'], true), true);
    assert.equal(isHidden(['a', '.git', 'config'], true), true);
    assert.equal(isHidden(['.well-known', 'security.txt'], true), false);
    assert.equal(isHidden(['.well-known', 'security.txt'], false), true);
    assert.equal(isHidden(['a', '.well-known'], true), true);
    assert.equal(isHidden(['a.b', 'c'], true), false);
  });
});

describe('parseRange', () => {
  const cases: [string, string, number, ReturnType<typeof parseRange>][] = [
    ['single', 'bytes=0-9', 100, [{ start: 0, end: 9 }]],
    ['unit is case-insensitive', 'Bytes=0-0', 100, [{ start: 0, end: 0 }]],
    ['suffix', 'bytes=-30', 100, [{ start: 70, end: 99 }]],
    ['suffix longer than file', 'bytes=-500', 100, [{ start: 0, end: 99 }]],
    ['open-ended', 'bytes=90-', 100, [{ start: 90, end: 99 }]],
    ['last clipped', 'bytes=50-1000', 100, [{ start: 50, end: 99 }]],
    ['multi keeps order when disjoint', 'bytes=50-59, 0-9', 100, [{ start: 50, end: 59 }, { start: 0, end: 9 }]],
    ['overlap coalesced', 'bytes=0-10,5-20,21-30', 100, [{ start: 0, end: 30 }]],
    ['unsatisfiable dropped from a set', 'bytes=0-1,200-300', 100, [{ start: 0, end: 1 }]],
    ['all unsatisfiable', 'bytes=100-', 100, 'unsatisfiable'],
    ['zero suffix', 'bytes=-0', 100, 'unsatisfiable'],
    ['empty file', 'bytes=0-', 0, 'unsatisfiable'],
    ['unknown unit ignored', 'items=0-1', 100, null],
    ['no equals', 'bytes', 100, null],
    ['last before first', 'bytes=5-2', 100, null],
    ['garbage', 'bytes=a-b', 100, null],
    ['no dash', 'bytes=5', 100, null],
    ['empty set', 'bytes=', 100, null],
    ['negative start', 'bytes=--5', 100, null],
    // Positions of any length are valid syntax (RFC 9110 §14.1.1): clipped, or unsatisfiable.
    ['huge last position clipped', 'bytes=0-99999999999999999999', 100, [{ start: 0, end: 99 }]],
    ['huge first position unsatisfiable', 'bytes=99999999999999999-', 100, 'unsatisfiable'],
    ['huge suffix is the whole file', 'bytes=-99999999999999999999', 100, [{ start: 0, end: 99 }]],
    ['huge last before huge first', 'bytes=99999999999999999999-99999999999999999998', 100, null],
    ['huge equal positions', 'bytes=099999999999999999999-99999999999999999999', 100, 'unsatisfiable'],
    ['too many ranges', 'bytes=' + Array.from({ length: 17 }, (_, i) => `${i * 2}-${i * 2}`).join(','), 100, null],
  ];
  for (const [name, field, size, want] of cases) test(name, () => assert.deepEqual(parseRange(field, size), want));
});

describe('chooseCoding', () => {
  const both = (1 << BR) | (1 << GZIP);
  const cases: [string, string | undefined, number, number][] = [
    ['no header: identity', undefined, both, IDENTITY],
    ['no siblings: identity', 'br, gzip', 0, IDENTITY],
    ['tie prefers br', 'gzip, br', both, BR],
    ['higher q wins', 'br;q=0.5, gzip;q=0.9', both, GZIP],
    ['q=0 excludes br', 'br;q=0, gzip', both, GZIP],
    ['only gzip available', 'br, gzip', 1 << GZIP, GZIP],
    ['star covers br', '*', both, BR],
    ['star with gzip excluded', 'gzip;q=0, *', 1 << GZIP, IDENTITY],
    ['identity preferred explicitly', 'identity, br;q=0.5', both, IDENTITY],
    ['identity;q=0 and no acceptable coding: identity anyway', 'identity;q=0', both, IDENTITY],
    ['x-gzip alias', 'x-gzip', 1 << GZIP, GZIP],
    ['case-insensitive, spaces', ' GZIP ; Q=1 ', 1 << GZIP, GZIP],
    ['unknown coding only', 'zstd', both, IDENTITY],
    ['malformed q counts as 0', 'br;q=abc, gzip;q=0.1', both, GZIP],
  ];
  for (const [name, field, mask, want] of cases) test(name, () => assert.equal(chooseCoding(field, mask), want));
});

describe('entity tags and preconditions', () => {
  const tag = '"1f-abc"';
  const lm = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT');
  const cond = (headers: string[]) => collectConditions(headers);
  test('etag lists', () => {
    assert.equal(etagListMatches('"x", "1f-abc"', tag, true), true);
    assert.equal(etagListMatches('W/"1f-abc"', tag, true), true, 'weak comparison ignores W/');
    assert.equal(etagListMatches('W/"1f-abc"', tag, false), false, 'strong comparison rejects weak tags');
    assert.equal(etagListMatches('*', tag, false), true);
    assert.equal(etagListMatches('"a,b", "1f-abc"', tag, true), true, 'comma inside a tag');
    assert.equal(etagListMatches('"1f-ab"', tag, true), false);
    assert.equal(etagListMatches('1f-abc', tag, true), false, 'unquoted is malformed');
  });
  const table: [string, string[], number][] = [
    ['nothing', [], 200],
    ['If-None-Match hit', ['if-none-match', tag], 304],
    ['If-None-Match miss', ['if-none-match', '"zz"'], 200],
    ['If-None-Match on two lines', ['if-none-match', '"zz"', 'if-none-match', tag], 304],
    ['If-None-Match * ', ['if-none-match', '*'], 304],
    ['If-Modified-Since equal', ['if-modified-since', 'Sun, 06 Nov 1994 08:49:37 GMT'], 304],
    ['If-Modified-Since earlier', ['if-modified-since', 'Sun, 06 Nov 1994 08:49:36 GMT'], 200],
    ['If-Modified-Since invalid date ignored', ['if-modified-since', 'yesterday'], 200],
    ['If-Modified-Since ignored when If-None-Match present', ['if-none-match', '"zz"', 'if-modified-since', 'Sun, 06 Nov 1994 08:49:37 GMT'], 200],
    ['If-Match miss', ['if-match', '"zz"'], 412],
    ['If-Match weak never matches', ['if-match', 'W/' + tag], 412],
    ['If-Match hit', ['if-match', tag], 200],
    ['If-Match *', ['if-match', '*'], 200],
    ['If-Unmodified-Since before', ['if-unmodified-since', 'Sun, 06 Nov 1994 08:49:36 GMT'], 412],
    ['If-Unmodified-Since equal', ['if-unmodified-since', 'Sun, 06 Nov 1994 08:49:37 GMT'], 200],
    ['If-Unmodified-Since ignored when If-Match present', ['if-match', tag, 'if-unmodified-since', 'Sun, 06 Nov 1990 08:49:36 GMT'], 200],
    ['412 before 304', ['if-match', '"zz"', 'if-none-match', tag], 412],
  ];
  for (const [name, headers, want] of table) test(name, () => assert.equal(evaluatePreconditions(cond(headers), tag, lm), want));
  test('HTTP-dates: the three forms of RFC 9110 §5.6.7 and nothing else', () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37);
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
    assert.equal(parseHttpDate('Thu, 29 Feb 2024 00:00:00 GMT'), Date.UTC(2024, 1, 29));
    for (const bad of ['3000', '2024', 'Thu, 26 Nov 2099 11:56:23', 'Thu, 26 Nov 2099 11:56:23 UTC', 'Sun, 6 Nov 1994 08:49:37 GMT',
      'sun, 06 Nov 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 08:49:37 GMT ', 'Sun, 06 Nov 1994 24:00:00 GMT', 'Fri, 31 Feb 2023 00:00:00 GMT',
      'Sun, 00 Nov 1994 08:49:37 GMT', '1994-11-06T08:49:37Z', 'yesterday', '']) {
      assert.ok(Number.isNaN(parseHttpDate(bad)), JSON.stringify(bad));
    }
  });
  test('a value that is not an HTTP-date is ignored, however Date.parse reads it', () => {
    assert.equal(evaluatePreconditions(cond(['if-modified-since', '3000']), tag, lm), 200);
    assert.equal(evaluatePreconditions(cond(['if-modified-since', 'Thu, 26 Nov 2099 11:56:23']), tag, lm), 200);
    assert.equal(evaluatePreconditions(cond(['if-unmodified-since', '1990']), tag, lm), 200);
  });
  test('If-Range', () => {
    const date = new Date(lm).toUTCString();
    assert.equal(ifRangeHolds(undefined, tag, date), true);
    assert.equal(ifRangeHolds(tag, tag, date), true);
    assert.equal(ifRangeHolds('W/' + tag, tag, date), false);
    assert.equal(ifRangeHolds('"other"', tag, date), false);
    assert.equal(ifRangeHolds(date, tag, date), true);
    assert.equal(ifRangeHolds('Sun, 06 Nov 1994 08:49:38 GMT', tag, date), false);
  });
});

describe('Cache-Control classes and content types', () => {
  const fp: [string, boolean][] = [
    ['app.3f9a2c.js', true],
    ['app-3F9A2C1B.css', true],
    ['chunk.k3j5x9q2.js', true],
    ['script.js', false],
    ['styles.css', false],
    ['logo-dark2x.png', false],
    ['jquery-3.7.1.min.js', false],
    ['abcdef.js', false],
    ['index.html', false],
  ];
  for (const [name, want] of fp) test(`fingerprinted ${name}: ${want}`, () => assert.equal(isFingerprinted(name), want));
  test('classes', () => {
    assert.equal(cacheControlFor('a.3f9a2c.html', 'text/html; charset=utf-8', DEFAULT_CACHE_CONTROL), 'no-cache');
    assert.equal(cacheControlFor('app.3f9a2c.js', 'text/javascript', DEFAULT_CACHE_CONTROL), 'public, max-age=31536000, immutable');
    assert.equal(cacheControlFor('logo.svg', 'image/svg+xml', DEFAULT_CACHE_CONTROL), 'public, max-age=300');
  });
  const types: [string, string][] = [
    ['index.html', 'text/html; charset=utf-8'],
    ['app.js', 'text/javascript; charset=utf-8'],
    ['data.json', 'application/json; charset=utf-8'],
    ['logo.svg', 'image/svg+xml; charset=utf-8'],
    ['site.webmanifest', 'application/manifest+json; charset=utf-8'],
    ['photo.png', 'image/png'],
    ['archive.gz', 'application/gzip'],
    ['noextension', 'application/octet-stream'],
    ['weird.zzzunknown', 'application/octet-stream'],
  ];
  for (const [name, want] of types) test(`type ${name}`, () => assert.equal(contentTypeFor(name), want));
});

// RFC 6266 / RFC 8187 filename forms for the /files/ downloads.

describe('Content-Disposition filename forms', () => {
  const cases: [string, string, string][] = [
    ['plain', 'report.txt', "UTF-8''report.txt"],
    ['space and ampersand', 'a b&c.txt', "UTF-8''a%20b&c.txt"],
    ['quote, backslash, percent', 'a"b\\c%d', "UTF-8''a%22b%5Cc%25d"],
    ['CJK', '報告.pdf', "UTF-8''%E5%A0%B1%E5%91%8A.pdf"],
    ["RFC 8187 non-attr-chars ' ( ) *", "x'(y)*", "UTF-8''x%27%28y%29%2A"],
    ['emoji (astral)', '😀.png', "UTF-8''%F0%9F%98%80.png"],
  ];
  for (const [name, input, ext] of cases) {
    test(name, () => {
      assert.equal(extValue(input), ext);
      const fallback = asciiFallback(input);
      assert.match(fallback, /^[\x20-\x7e]+$/);
      assert.doesNotMatch(fallback, /["\\%]/);
    });
  }
  test('CR/LF can never split the header', () => {
    assert.equal(asciiFallback('a\r\nSet-Cookie: x'), 'a__Set-Cookie: x');
    assert.doesNotMatch(extValue('a\r\nb'), /[\r\n]/);
  });
});
