// Presence: a map by id from presence_state snapshots and presence_diff frames, idempotent.
import { Presence } from '../../src/client';

const alice = { id: 'a1', name: 'alice' };
const bob = { id: 'b1', name: 'bob' };
const bobTab2 = { id: 'b2', name: 'bob' };
const anonymous = { id: 'x' };

test('a snapshot replaces the map and reports who came and went since the last one', () => {
  const presence = new Presence();
  const first = presence.snapshot([alice, bob]);
  expect(first).toMatchObject({ joins: [alice, bob], leaves: [], snapshot: true });
  expect([...presence.members.keys()]).toEqual(['a1', 'b1']);
  // After a reconnect: bob left while we were away, his second tab came.
  const second = presence.snapshot([alice, bobTab2]);
  expect(second).toMatchObject({ joins: [bobTab2], leaves: [bob], snapshot: true });
  expect([...presence.members.values()]).toEqual([alice, bobTab2]);
});

test('diffs add and remove by id; two tabs of one name are two members', () => {
  const presence = new Presence();
  presence.snapshot([alice]);
  expect(presence.diff([bob, bobTab2], [])).toMatchObject({ joins: [bob, bobTab2], leaves: [], snapshot: false });
  expect(presence.members.size).toBe(3);
  expect(presence.diff([], [bob])).toMatchObject({ joins: [], leaves: [bob] });
  expect([...presence.members.values()]).toEqual([alice, bobTab2]);
});

test('idempotent: a join already in the snapshot or a leave of someone unknown changes nothing', () => {
  const presence = new Presence();
  presence.snapshot([alice, bob]);
  expect(presence.diff([alice], [{ id: 'nobody' }])).toBeNull();
  expect(presence.diff([bob], [])).toBeNull();
  expect(presence.members.size).toBe(2);
});

test('a member that joins and leaves in one diff is reported in neither list', () => {
  const presence = new Presence();
  presence.snapshot([]);
  expect(presence.diff([bob], [bob])).toBeNull();
  expect(presence.members.size).toBe(0);
});

test('members without a name are kept; malformed entries are skipped', () => {
  const presence = new Presence();
  const change = presence.snapshot([anonymous, null, 'x', { name: 'no id' }, { id: 7 }, { id: 'y', name: 5 }]);
  expect(change.joins).toEqual([anonymous, { id: 'y' }]);
  expect(presence.diff('not a list', undefined)).toBeNull();
});

test('clear(): everyone leaves; nothing to report when empty', () => {
  const presence = new Presence();
  presence.snapshot([alice, bob]);
  expect(presence.clear()).toMatchObject({ joins: [], leaves: [alice, bob] });
  expect(presence.clear()).toBeNull();
});
