import { describe, expect, it } from 'vitest';
import { RecentCalls } from './recent-calls.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('RecentCalls', () => {
  it('gives the promise while a call is in flight and the answer text once answered', async () => {
    const recent = new RecentCalls(4);
    let answer!: (text: string) => void;
    const promise = new Promise<string | undefined>((r) => {
      answer = r;
    });
    recent.add(11, promise);
    expect(recent.find(11, '1')).toBe(promise);
    answer('[3,"1",{"idTagInfo":{"status":"Accepted"}}]');
    await tick();
    expect(recent.find(11, '1')).toBe('[3,"1",{"idTagInfo":{"status":"Accepted"}}]');
    expect(recent.find(12, '1')).toBeUndefined();
  });

  it('makes an empty CALLRESULT again from the id instead of keeping it', async () => {
    const recent = new RecentCalls(4);
    recent.add(5, Promise.resolve('[3,"a\\"b",{}]'));
    await tick();
    expect(recent.find(5, 'a"b')).toBe('[3,"a\\"b",{}]');
    expect(JSON.parse(recent.find(5, 'a"b') as string)).toEqual([3, 'a"b', {}]);
  });

  it('forgets a call that got no answer, so that its retry is processed afresh', async () => {
    const recent = new RecentCalls(4);
    recent.add(7, Promise.resolve(undefined));
    expect(recent.find(7, '7')).toBeInstanceOf(Promise);
    await tick();
    expect(recent.find(7, '7')).toBeUndefined();
  });

  it('forgets the oldest call when full, and a late answer does not overwrite a newer call', async () => {
    const recent = new RecentCalls(2);
    let late!: (text: string) => void;
    recent.add(
      1,
      new Promise((r) => {
        late = r;
      }),
    );
    recent.add(2, Promise.resolve('two'));
    recent.add(3, Promise.resolve('three')); // takes the slot of 1
    await tick();
    late('one');
    await tick();
    expect(recent.find(1, '1')).toBeUndefined();
    expect(recent.find(2, '2')).toBe('two');
    expect(recent.find(3, '3')).toBe('three');
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RecentCalls(0)).toThrow(RangeError);
    expect(() => new RecentCalls(1.5)).toThrow(RangeError);
  });
});
