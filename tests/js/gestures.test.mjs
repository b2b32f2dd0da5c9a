// Tests for web/ui/gestures.js: touch points and times in, gesture events out.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    GestureRecognizer, GESTURE, LONG_PRESS_MS, MULTITOUCH_MS, TAP_MAX_MS, TWO_TOUCH_MS,
} from '../../web/ui/gestures.js';

const brief = (events) => events.map((e) => `${e.phase} ${e.type}`);

test('gestures: one, two and three fingers tapped are taps at the middle of the fingers', () => {
    const g = new GestureRecognizer();
    assert.deepEqual(g.touchStart(1, 10, 20, 0), []);
    const one = g.touchEnd(1, 12, 21, 80);
    assert.deepEqual(brief(one), ['start onetap', 'end onetap']);
    assert.equal(one[0].x, 10);
    assert.equal(one[0].y, 20);

    g.touchStart(1, 100, 100, 1000);
    g.touchStart(2, 140, 120, 1030);
    g.touchEnd(2, 140, 120, 1100);
    const two = g.touchEnd(1, 100, 100, 1120);
    assert.deepEqual(brief(two), ['start twotap', 'end twotap']);
    assert.deepEqual([two[0].x, two[0].y], [120, 110]);

    g.touchStart(1, 0, 0, 2000);
    g.touchStart(2, 30, 0, 2010);
    g.touchStart(3, 60, 30, 2020);
    assert.deepEqual(g.touchEnd(1, 0, 0, 2100), []);
    assert.deepEqual(g.touchEnd(2, 30, 0, 2110), []);
    const three = g.touchEnd(3, 60, 30, 2120);
    assert.deepEqual(brief(three), ['start threetap', 'end threetap']);
    assert.deepEqual([three[0].x, three[0].y], [30, 10]);
});

test('gestures: a wobble under the threshold is still a tap; fingers landing apart or four are nothing', () => {
    const g = new GestureRecognizer();
    g.touchStart(1, 10, 10, 0);
    assert.deepEqual(g.touchMove(1, 40, 30, 50), []);   // 36 px: a fingertip rolling
    assert.deepEqual(brief(g.touchEnd(1, 40, 30, 100)), ['start onetap', 'end onetap']);

    g.touchStart(1, 10, 10, 1000);
    g.touchStart(2, 60, 10, 1000 + MULTITOUCH_MS + 1);  // too late to be one gesture
    g.touchEnd(1, 10, 10, 1400);
    assert.deepEqual(g.touchEnd(2, 60, 10, 1400), []);

    for (let id = 1; id <= 4; id++) g.touchStart(id, id * 20, 10, 2000 + id);
    const out = [];
    for (let id = 1; id <= 4; id++) out.push(...g.touchEnd(id, id * 20, 10, 2100));
    assert.deepEqual(out, []);

    g.touchStart(1, 10, 10, 3000);
    // Held past the tap time (and no tick came, so no long press either): nothing.
    assert.deepEqual(g.touchEnd(1, 10, 10, 3000 + TAP_MAX_MS + 1), []);
});

test('gestures: one finger held still is a long press once its deadline passes, then drags', () => {
    const g = new GestureRecognizer();
    g.touchStart(7, 50, 60, 1000);
    assert.equal(g.deadline, 1000 + LONG_PRESS_MS);
    assert.deepEqual(g.tick(1000 + LONG_PRESS_MS - 1), []);
    const start = g.tick(1000 + LONG_PRESS_MS);
    assert.deepEqual(brief(start), ['start longpress']);
    assert.deepEqual([start[0].x, start[0].y], [50, 60]);
    assert.equal(g.deadline, null);
    const move = g.touchMove(7, 55, 70, 2100);
    assert.deepEqual(brief(move), ['move longpress']);
    assert.deepEqual([move[0].x, move[0].y], [55, 70]);
    assert.deepEqual(brief(g.touchEnd(7, 90, 90, 2200)), ['end longpress']);
    assert.equal(g.deadline, null);
});

test('gestures: one finger moving past the threshold drags from where it went down', () => {
    const g = new GestureRecognizer();
    g.touchStart(1, 10, 10, 0);
    const out = g.touchMove(1, 70, 10, 40);
    assert.deepEqual(brief(out), ['start drag', 'move drag']);
    assert.deepEqual([out[0].x, out[0].y, out[1].x, out[1].y], [10, 10, 70, 10]);
    assert.equal(g.deadline, null);                 // no long press after a drag began
    assert.deepEqual(g.tick(5000), []);
    assert.deepEqual(brief(g.touchMove(1, 80, 12, 60)), ['move drag']);
    // A second finger during a drag is ignored; lifting the dragging finger ends it.
    assert.deepEqual(g.touchStart(2, 200, 200, 70), []);
    assert.deepEqual(g.touchMove(2, 300, 300, 80), []);
    assert.deepEqual(brief(g.touchEnd(1, 80, 12, 90)), ['end drag']);
    assert.deepEqual(g.touchEnd(2, 300, 300, 100), []);
    // ...and the next touch starts afresh.
    g.touchStart(3, 5, 5, 500);
    assert.deepEqual(brief(g.touchEnd(3, 5, 5, 550)), ['start onetap', 'end onetap']);
});

test('gestures: two fingers moving together scroll; parting or closing they pinch', () => {
    const g = new GestureRecognizer();
    g.touchStart(1, 100, 100, 0);
    g.touchStart(2, 160, 100, 10);
    assert.equal(g.deadline, null);                 // two fingers never long-press
    assert.deepEqual(g.touchMove(1, 100, 170, 50), []);     // one moved: wait for the other
    assert.equal(g.deadline, 50 + TWO_TOUCH_MS);
    const out = g.touchMove(2, 160, 170, 60);
    assert.deepEqual(brief(out), ['start twodrag', 'move twodrag']);
    assert.deepEqual([out[0].x, out[0].y, out[0].dy], [130, 100, 0]);
    assert.deepEqual([out[1].x, out[1].y, out[1].dx, out[1].dy], [130, 100, 0, 70]);
    assert.deepEqual(brief(g.touchEnd(1, 100, 170, 100)), ['end twodrag']);
    g.touchEnd(2, 160, 170, 110);

    g.touchStart(1, 100, 100, 1000);
    g.touchStart(2, 140, 100, 1005);
    g.touchMove(1, 40, 100, 1050);
    const pinch = g.touchMove(2, 200, 100, 1060);
    assert.deepEqual(brief(pinch), ['start pinch', 'move pinch']);
    assert.equal(pinch[1].spread, 160 - 40);
    assert.equal(g.touchMove(2, 240, 100, 1070)[0].spread, 200 - 40);
    assert.deepEqual(brief(g.cancel()), ['end pinch']);
    assert.deepEqual(g.cancel(), []);
});

test('gestures: when only one of two fingers moves, the deadline decides', () => {
    const g = new GestureRecognizer();
    g.touchStart(1, 100, 100, 0);
    g.touchStart(2, 150, 100, 5);
    g.touchMove(1, 100, 180, 20);                   // the other finger stays put
    assert.deepEqual(g.tick(20 + TWO_TOUCH_MS - 1), []);
    const out = g.tick(20 + TWO_TOUCH_MS);
    assert.equal(out[0].phase, 'start');
    assert.ok([GESTURE.TWO_DRAG, GESTURE.PINCH].includes(out[0].type));
    // The finger left of a two-finger touch does not start a drag.
    const k = new GestureRecognizer();
    k.touchStart(1, 0, 0, 0);
    k.touchStart(2, 50, 0, 1);
    k.touchEnd(2, 50, 0, 100);
    assert.deepEqual(k.touchMove(1, 0, 200, 150), []);
    assert.deepEqual(k.touchEnd(1, 0, 200, 200), []);
    // Three fingers moving are nothing of ours.
    const h = new GestureRecognizer();
    h.touchStart(1, 0, 0, 0);
    h.touchStart(2, 50, 0, 1);
    h.touchStart(3, 100, 0, 2);
    assert.deepEqual(h.touchMove(1, 0, 90, 30), []);
    assert.deepEqual([h.touchEnd(1, 0, 90, 40), h.touchEnd(2, 50, 0, 41), h.touchEnd(3, 100, 0, 42)].flat(), []);
});
