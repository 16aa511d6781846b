// Where each face's label goes: beside its face, over no other face and no other label, in the frame.
//
// A line-for-line port of animerec/realtime/label_layout.py (read its docstring for the rules): the
// burnt-in overlay and this page lay labels out the same way. Change both together;
// tests/test_overlay_browser.py runs the two on the same cases and compares.
//
// Rectangles are {x, y, w, h} in frame pixels. A request is {box, sizes: [[w, h], ...], track}
// with sizes preferred first; a placement is {rect, size, spot}, or null when the label is dropped.
"use strict";

const LabelLayout = (() => {
  const SPOTS = ["below", "below-end", "above", "above-end", "right", "left", "inside"];

  const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  const inside = (r, width, height) => r.x >= 0 && r.y >= 0 && r.x + r.w <= width && r.y + r.h <= height;
  const grown = (r, by) => ({ x: r.x - by, y: r.y - by, w: r.w + 2 * by, h: r.h + 2 * by });
  const clamp = (value, low, high) => Math.max(low, Math.min(value, high));

  function spotRect(spot, box, [w, h], width, height, gap) {
    const start = clamp(box.x, 0, width - w);
    const end = clamp(box.x + box.w - w, 0, width - w);
    const beside = clamp(box.y, 0, height - h);
    return {
      "below": { x: start, y: box.y + box.h + gap, w, h },
      "below-end": { x: end, y: box.y + box.h + gap, w, h },
      "above": { x: start, y: box.y - gap - h, w, h },
      "above-end": { x: end, y: box.y - gap - h, w, h },
      "right": { x: box.x + box.w + gap, y: beside, w, h },
      "left": { x: box.x - gap - w, y: beside, w, h },
      "inside": { x: start, y: Math.min(box.y + box.h, height) - h, w, h },
    }[spot];
  }

  function firstFree(request, spots, faces, labels, width, height, gap) {
    // Over the face's own edge only when no size fits beside it: a smaller label beats a hidden chin.
    for (const group of [spots.filter((s) => s !== "inside"), ["inside"]]) {
      for (let size = 0; size < request.sizes.length; size++) {
        for (const spot of group) {
          const rect = spotRect(spot, request.box, request.sizes[size], width, height, gap);
          if (inside(rect, width, height) && ![...faces, ...labels].some((o) => overlaps(rect, o))) {
            return { rect, size, spot };
          }
        }
      }
    }
    return null;
  }

  // `previous` maps track ids to last frame's spots (a Map); returns {placements, dropped}.
  function place(requests, width, height, gap = 0, previous = new Map()) {
    const obstacles = requests.map((r) => grown(r.box, gap));
    const known = (r) => r.track !== null && r.track !== undefined && previous.has(r.track);
    const order = requests.map((_, i) => i).sort((i, j) => {
      const a = requests[i], b = requests[j];
      return (known(a) ? 0 : 1) - (known(b) ? 0 : 1) || a.box.y - b.box.y || a.box.x - b.box.x || i - j;
    });
    const placed = [];
    const placements = requests.map(() => null);
    for (const i of order) {
      const request = requests[i];
      const before = known(request) ? previous.get(request.track) : undefined;
      const spots = [...(SPOTS.includes(before) ? [before] : []), ...SPOTS.filter((s) => s !== before)];
      const others = obstacles.filter((_, j) => j !== i);
      const placement = firstFree(request, spots, others, placed, width, height, gap);
      if (placement !== null) placed.push(placement.rect);
      placements[i] = placement;
    }
    return { placements, dropped: placements.filter((p) => p === null).length };
  }

  // place() with a memory: each track's spot is kept for the next frame.
  class Placer {
    constructor(gap = 0) {
      this.gap = gap;
      this.spots = new Map();
    }

    place(requests, width, height) {
      const layout = place(requests, width, height, this.gap, this.spots);
      this.spots = new Map();
      requests.forEach((r, i) => {
        const track = r.track;
        if (track !== null && track !== undefined && layout.placements[i] !== null) {
          this.spots.set(track, layout.placements[i].spot);
        }
      });
      return layout;
    }
  }

  return { SPOTS, place, Placer };
})();
