// url_whatwg_cases.js: writes url_whatwg_cases.h, the expected values of
// test_url.c's WHATWG tables, from Node's URL (the WHATWG URL Standard as
// Node 20's ada implements it).  The oracle is run by hand, not by the tests:
//     node tests/unit/url_whatwg_cases.js > tests/unit/url_whatwg_cases.h
// A case given as [input, message] must make Node throw too (or, for an
// unsupported scheme, parse as another scheme); the message is volley's own.  Deliberate deviations from Node are not here but written by
// hand in test_url.c, each with its reason.
'use strict';

const parse = [
    'https://ko.wikipedia.org/wiki/한국어',
    'http://한국.kr/',
    'http://BÜCHER.de/',
    'http://faß.de/',
    'http://xn--3e0b707e.kr/',
    'http://한국.kr:8080/경로?질의=값#조각',
    'http://example.com/a b|c{d}',
    'http://example.com/a^b`c',
    'http://example.com/"<>',
    'http://h/a#b#c',
    'http://h/%zz',
    'http://h/100%',
    'http://h/a%',
    'http://h/%41%2f%c3%a9',
    'http://h/a%20b',
    'http://h/../../x',
    'http://h/..',
    'http://h/a/./b/../c',
    'http://h/a/%2e%2E/b',
    'http://h/a/.%2e',
    'http://h/a/..',
    'http://h/a/.',
    'http://h/;a=b,c',
    "https://h/~user/@x:y!$&'()*+,;=",
    'http://EXAMPLE.com:80/',
    'https://EXAMPLE.com:443/x',
    'http://h:443/',
    'http://[::1]:8080/',
    'http://[2001:DB8:0:0:0:0:0:1]/',
    'http://0x7f.1/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://127.1/',
    'http://1.2.3.4./',
    'HTTP://h/',
    'hTTpS://h/',
    '  http://h/x  ',
    '\x01http://h/\x1f',
    'http://h/a\tb\nc\rd',
    'ht\ttp://h/',
    'http:\\\\h\\a\\b',
    'http://h\\a\\..\\b',
    'http:/h/x',
    'http:h/x',
    'http:///h/x',
    'http://user:pass@h/x',
    'http://user@h/',
    'http://a@b@h/',
    'http://us er:p@ss:w@h/',
    'http://:pw@h/',
    'http://@h/',
    'http://h/?q=a b',
    "http://h/?q='\"<>`{}|^",
    'http://h/?q=한',
    'http://h/?a#b?c',
    'http://h?x',
    'http://h#frag',
    'http://h/p?',
    'http://h:/p',
    'http://h:8080',
    'http://H%41.com/',
    'http://ex_ample.com/',
    'http://h./',
    'http://h/a\\b',
    'http://h/?a\\b',
    'http://h/%2F',
    ['ftp://x/', "url: unsupported scheme 'ftp'"],
    ['javascript:alert(1)', "url: unsupported scheme 'javascript'"],
    ['http://:80/', 'url: empty host'],
    ['http://', 'url: empty host'],
    ['http://user@/', 'url: empty host'],
    ['http://h:99999/', 'url: port out of range'],
    ['http://h:8a/', 'url: invalid port'],
    ['http://a b/', 'url: invalid host'],
    ['http://h|x/', 'url: invalid host'],
    ['http://h^/', 'url: invalid host'],
    ['http://%00/', 'url: invalid host'],
    ['http://h%25/', 'url: invalid host'],
    ['http://[::1/', 'url: malformed IPv6 host'],
    ['http://[::g]/', 'url: malformed IPv6 host'],
    ['http://1.2.3.4.5/', 'url: invalid IPv4 host'],
    ['http://256.0.0.1/', 'url: invalid IPv4 host'],
    ['http://0x100000000/', 'url: invalid IPv4 host'],
    ['/just/a/path', 'url: malformed URL (no scheme)'],
    ['example.com/x', 'url: malformed URL (no scheme)'],
    ['', 'url: malformed URL (no scheme)'],
];

const B = 'http://a/b/c/d;p?q';
const resolve = [
    [B, '../x'], [B, '?q2'], [B, '//other/p'], [B, '/a b'], [B, 'https://ünï.example/ä'],
    [B, '#f'], [B, ''], [B, 'g h'], [B, '\\\\x\\y'], [B, '/\\x'], [B, 'http:g'],
    [B, 'https:g'], [B, '//[::1]:81/z'], [B, '  /x  '], [B, '../../../../x'],
    [B, '%2e%2e/x'], [B, '?q=한 b'], [B, 'HTTP://EXAMPLE.com:80/p'], [B, '//u:p@h/'],
    [B, './g?x#y'], [B, '/%zz'], [B, './a\tb'], [B, '///x/y'], [B, '한국어'],
    ['http://[::1]:8080/a', '/b?c'], ['http://u:p@h/a/b', 'c'], ['https://h/a/', '..'],
    ['http://h/a?x', '#'], ['http://h/', '//한국.kr/경로'],
];

function cstr(s) {
    if (s === null)
        return 'NULL';
    let out = '"';
    for (const byte of Buffer.from(s, 'utf8')) {
        const c = String.fromCharCode(byte);
        if (c === '"' || c === '\\' || c === '?')    // "??=" would be a C11 trigraph
            out += '\\' + c;
        else if (byte >= 0x20 && byte < 0x7f)
            out += c;
        else
            out += '\\' + byte.toString(8).padStart(3, '0');
    }
    return out + '"';
}

function parseRow(entry) {
    const [input, error] = Array.isArray(entry) ? entry : [entry, null];
    let u = null;
    try {
        u = new URL(input);
    } catch (e) {
        if (!error)
            throw new Error(`Node rejects ${JSON.stringify(input)}, the table expects success`);
        return `    {${cstr(input)},\n     NULL, NULL, NULL, 0, ${cstr(error)}},`;
    }
    const special = u.protocol === 'http:' || u.protocol === 'https:';
    if (error && !special && error.startsWith('url: unsupported scheme'))
        return `    {${cstr(input)},\n     NULL, NULL, NULL, 0, ${cstr(error)}},`;
    if (error)
        throw new Error(`Node accepts ${JSON.stringify(input)} as ${u.href}, the table expects ${error}`);
    const href = u.href.split('#')[0];
    const target = href.slice(href.indexOf('/', u.protocol.length + 2));
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = u.port ? Number(u.port) : (u.protocol === 'https:' ? 443 : 80);
    return `    {${cstr(input)},\n     ${cstr(href)},\n     ${cstr(host)}, ${cstr(target)}, ${port}, NULL},`;
}

function resolveRow([base, ref]) {
    return `    {${cstr(base)}, ${cstr(ref)},\n     ${cstr(new URL(ref, base).href)}},`;
}

console.log(`/* url_whatwg_cases.h: generated by url_whatwg_cases.js with Node ${process.version}; ` +
            'do not edit. */');
console.log('static const struct parse_case whatwg_parse_cases[] = {');
parse.forEach(e => console.log(parseRow(e)));
console.log('};\n\nstatic const struct resolve_case whatwg_resolve_cases[] = {');
resolve.forEach(e => console.log(resolveRow(e)));
console.log('};');
