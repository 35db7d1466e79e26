// One coalesced redraw of the queue, map, posts and alarm after any change of state. The
// drawing functions are registered by main.js, so the modules that ask for a redraw (the feed,
// a selection, an acknowledgement) need not import the modules that draw.

const renderers = [];
let pending = false;

export function whenRendering(...functions) {
  renderers.push(...functions);
}

export function scheduleRender() {
  if (pending) return;
  pending = true;
  setTimeout(() => {
    pending = false;
    for (const render of renderers) render();
  }, 0);
}
