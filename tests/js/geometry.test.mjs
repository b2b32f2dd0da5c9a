// Tests for web/ui/geometry.js: wheel accumulation, DOM -> RFB buttons, client
// coordinates through CSS scaling, and fitting the framebuffer to the screen.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    WheelAccumulator, BUTTON, DELTA_LINE, DELTA_PAGE, WHEEL_MAX_STEPS,
    maskFromDomButtons, maskFromDomButton, clientToFramebuffer, fitSize,
} from '../../web/ui/geometry.js';

test('wheel: pixel deltas accumulate into steps', () => {
    const w = new WheelAccumulator();
    assert.deepEqual(w.add(0, 20), []);
    assert.deepEqual(w.add(0, 20), []);
    assert.deepEqual(w.add(0, 20), [BUTTON.WHEEL_DOWN]);
    assert.deepEqual(w.add(0, -120), [BUTTON.WHEEL_UP, BUTTON.WHEEL_UP]); // remainder dropped on reversal
    assert.deepEqual(w.add(-50, 0), [BUTTON.WHEEL_LEFT]);
    assert.deepEqual(w.add(100, 0), [BUTTON.WHEEL_RIGHT, BUTTON.WHEEL_RIGHT]);
});

test('wheel: line and page modes are scaled, and capped', () => {
    const w = new WheelAccumulator();
    assert.deepEqual(w.add(0, 3, DELTA_LINE), [BUTTON.WHEEL_DOWN]); // one Firefox notch
    w.reset();
    const many = w.add(0, 5, DELTA_PAGE);
    assert.equal(many.length, WHEEL_MAX_STEPS);
    assert.deepEqual(w.add(0, 1), []); // the overflow was dropped, not saved up
});

test('buttons map from DOM to RFB order', () => {
    assert.equal(maskFromDomButtons(1), BUTTON.LEFT);
    assert.equal(maskFromDomButtons(2), BUTTON.RIGHT);
    assert.equal(maskFromDomButtons(4), BUTTON.MIDDLE);
    assert.equal(maskFromDomButtons(7), 7);
    // Back and forward are buttons 8 and 9 (rfb.js sends them only with ExtendedMouseButtons).
    assert.equal(maskFromDomButtons(8 | 16), BUTTON.BACK | BUTTON.FORWARD);
    assert.equal(maskFromDomButton(0), BUTTON.LEFT);
    assert.equal(maskFromDomButton(1), BUTTON.MIDDLE);
    assert.equal(maskFromDomButton(2), BUTTON.RIGHT);
    assert.equal(maskFromDomButton(3), 0);
});

test('client coordinates map through CSS scaling and clamp', () => {
    const rect = { left: 10, top: 20, width: 400, height: 300 };
    assert.deepEqual(clientToFramebuffer(10, 20, rect, 800, 600), { x: 0, y: 0 });
    assert.deepEqual(clientToFramebuffer(210, 170, rect, 800, 600), { x: 400, y: 300 });
    assert.deepEqual(clientToFramebuffer(2000, -5, rect, 800, 600), { x: 799, y: 0 });
    assert.deepEqual(clientToFramebuffer(5, 5, { left: 0, top: 0, width: 0, height: 0 }, 800, 600),
        { x: 0, y: 0 });
});

test('fit keeps the aspect ratio', () => {
    assert.deepEqual(fitSize(800, 600, 400, 400), { width: 400, height: 300, scale: 0.5 });
    assert.deepEqual(fitSize(800, 600, 1600, 600), { width: 800, height: 600, scale: 1 });
    assert.equal(fitSize(1024, 768, 390, 700).width, 390);
    assert.deepEqual(fitSize(0, 0, 100, 100), { width: 0, height: 0, scale: 1 });
});
