// The demo pages' shared display helpers. The connection itself is channelkit/client, which the pages
// import as an ES module from /static/channelkit-client.js (src/client/, served by routing.ts).
// Load with <script src="/static/page.js"></script>; it defines `window.channelkit`.
(function () {
  'use strict';

  /** Appends `<tag class=className>text</tag>` to `parent`, as text (never parsed as HTML). */
  function appendText(parent, tag, text, className) {
    var node = document.createElement(tag);
    node.textContent = text;
    if (className) node.className = className;
    parent.appendChild(node);
    return node;
  }

  /** Countdown timers of the state elements, so a new state stops the old countdown. */
  var countdowns = new WeakMap();

  /**
   * Shows a client state in `element` (text, and data-state for styling and tests): the client's
   * 'connecting', 'open' (shown as 'connected'), 'reconnecting' or 'closed', with the state event as
   * `info`. While reconnecting after a delay, the text counts down the seconds to the next attempt.
   */
  function showState(element, state, info) {
    var previous = countdowns.get(element);
    if (previous !== undefined) clearInterval(previous);
    countdowns.delete(element);
    var shown = state === 'open' ? 'connected' : state;
    element.dataset.state = shown;
    if (state === 'reconnecting' && info && info.delay > 0) {
      var at = Date.now() + info.delay;
      var tick = function () {
        var seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
        element.textContent = 'reconnecting in ' + seconds + ' s';
        if (seconds === 0) {
          clearInterval(countdowns.get(element));
          countdowns.delete(element);
        }
      };
      tick();
      countdowns.set(element, setInterval(tick, 250));
      return;
    }
    var text = shown;
    if (state === 'closed' && info && info.code && info.code !== 1000) {
      text += ' (' + info.code + (info.reason ? ': ' + info.reason : '') + ')';
    }
    element.textContent = text;
  }

  window.channelkit = { appendText: appendText, showState: showState };
})();
