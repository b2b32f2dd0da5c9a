// ESLint flat config for web/ and tests/js (a dev-only check, never imported by
// the product): one indentation style, no unused variables, no undefined globals.
// tests/test_js.py runs it as
//   eslint --config tests/js/eslint.config.mjs web tests/js
// and .ci/run installs ESLint 9 into a temporary folder for CI. It lives here, not
// in web/, so that wsproxy does not serve it to browsers.
//
// Globals are listed by hand rather than taken from the `globals` package, so the
// config imports nothing and the lists say exactly what each part may use:
// web/core/ runs in Node too, so it gets no DOM at all (STYLE.md: protocol
// modules never touch window or document), and this is where that is checked.

// Host APIs that both browsers and Node 20 provide.
const SHARED = ['console', 'TextDecoder', 'TextEncoder', 'queueMicrotask', 'URL',
    'URLSearchParams', 'setTimeout', 'clearTimeout'];
// What the page (web/app.js, web/ui/) uses beyond those.
const BROWSER = ['window', 'document', 'navigator', 'WebSocket', 'fetch', 'AbortController',
    'requestAnimationFrame', 'cancelAnimationFrame', 'ResizeObserver', 'createImageBitmap',
    'Blob', 'OffscreenCanvas', 'Event', 'performance'];
// What the Node tests use beyond those.
const NODE = ['process', 'Buffer', 'globalThis', 'setImmediate'];

const readonly = (names) => Object.fromEntries(names.map((n) => [n, 'readonly']));

const RULES = {
    'indent': ['error', 4, { SwitchCase: 1, flatTernaryExpressions: true }],
    'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none' }],
    'no-undef': 'error',
};

export default [
    {
        files: ['web/core/**/*.js'],
        languageOptions: { sourceType: 'module', globals: readonly(SHARED) },
        rules: RULES,
    },
    {
        files: ['web/*.js', 'web/ui/**/*.js'],
        languageOptions: { sourceType: 'module', globals: readonly([...SHARED, ...BROWSER]) },
        rules: RULES,
    },
    {
        files: ['tests/js/**/*.mjs'],
        languageOptions: { sourceType: 'module', globals: readonly([...SHARED, ...NODE]) },
        rules: RULES,
    },
];
