import WebSocket from 'ws';

/** How long a new connection must stay open before a test uses it. */
const connect_settle_ms = 50;

/** A minimal OCPP-J charger for tests, on the `ws` package: sends CALLs, awaits their answers. */
export class TestCharger {
  /**
   * Connections dropped right after opening and opened again, over this process: reported on
   * every occurrence (never silent) so a test run shows them; test/ocpp-connections.test.ts
   * asserts there are none on a plain open/close loop.
   */
  static early_drops = 0;
  private next_id = 1;
  private readonly waiting = new Map<string, (frame: unknown[]) => void>();
  /** CALLs the server sent to this charger, in order of arrival. */
  readonly received_calls: { id: string; action: string; payload: Record<string, unknown> }[] = [];
  /** How this charger answers the server's CALLs: a payload, a CALLERROR code, or no answer. */
  on_call: (
    action: string,
    payload: Record<string, unknown>,
  ) => { result: unknown } | { error: string } | 'silent' = () => ({ result: {} });
  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      if (frame[0] === 2) {
        const call = {
          id: String(frame[1]),
          action: String(frame[2]),
          payload: frame[3] as Record<string, unknown>,
        };
        this.received_calls.push(call);
        const answer = this.on_call(call.action, call.payload);
        if (answer === 'silent') return;
        socket.send(
          JSON.stringify(
            'result' in answer ? [3, call.id, answer.result] : [4, call.id, answer.error, 'refused', {}],
          ),
        );
        return;
      }
      const resolve = this.waiting.get(String(frame[1]));
      if (resolve !== undefined) {
        this.waiting.delete(String(frame[1]));
        resolve(frame);
      }
    });
  }

  static async connect(
    url: string,
    protocol = 'ocpp1.6',
    basic_auth?: { username: string; password: string },
    tls_ca?: string,
  ): Promise<TestCharger> {
    const headers: Record<string, string> = {};
    if (basic_auth !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${basic_auth.username}:${basic_auth.password}`).toString('base64')}`;
    }
    // A connection was seen now and then dropped (1006 on both ends) within milliseconds of
    // opening, right after another charger's connection closed. A real charger reconnects, and so
    // does this one, but loudly: each drop is counted and printed.
    for (let attempt = 1; ; attempt++) {
      const socket = new WebSocket(url, protocol, {
        headers,
        ...(tls_ca === undefined ? {} : { ca: tls_ca }),
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
        socket.once('unexpected-response', (_req, res) =>
          reject(new Error(`handshake refused: ${res.statusCode}`)),
        );
      });
      const dropped = await new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), connect_settle_ms);
        socket.once('close', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
      if (dropped === undefined) return new TestCharger(socket);
      TestCharger.early_drops++;
      console.warn(
        `TestCharger: connection to ${url} dropped (${dropped}) within ${connect_settle_ms} ms of opening ` +
          `(attempt ${attempt}; ${TestCharger.early_drops} early drops in this process)`,
      );
      if (attempt >= 3) throw new Error(`connection to ${url} dropped right after opening, ${attempt} times`);
    }
  }

  /** Sends raw text and resolves with the answer frame carrying `id` (or "-1"). */
  async raw(text: string, id: string, timeout_ms = 10_000): Promise<unknown[]> {
    const answer = new Promise<unknown[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${id}`)), timeout_ms);
      this.waiting.set(id, (frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
    });
    this.socket.send(text);
    return await answer;
  }

  /** Sends a CALL; resolves with the CALLRESULT payload, rejects with the CALLERROR frame. */
  async call(action: string, payload: unknown): Promise<Record<string, unknown>> {
    const id = `m${this.next_id++}`;
    const frame = await this.raw(JSON.stringify([2, id, action, payload]), id);
    if (frame[0] === 3) return frame[2] as Record<string, unknown>;
    throw Object.assign(new Error(`CALLERROR ${String(frame[2])}: ${String(frame[3])}`), { frame });
  }

  close(): void {
    this.socket.close();
  }
}

/** A whole OCPP 1.6 session; returns the transaction id. Energy is meter_stop_wh - meter_start_wh. */
export async function run_ocpp16_session(
  charger: TestCharger,
  session: {
    id_tag: string;
    connector_id: number;
    meter_start_wh: number;
    meter_stop_wh: number;
    start: Date;
    stop: Date;
  },
): Promise<number> {
  await charger.call('Authorize', { idTag: session.id_tag });
  const started = await charger.call('StartTransaction', {
    connectorId: session.connector_id,
    idTag: session.id_tag,
    meterStart: session.meter_start_wh,
    timestamp: session.start.toISOString(),
  });
  const transaction_id = started.transactionId as number;
  const middle_ms = (session.start.getTime() + session.stop.getTime()) / 2;
  const middle_wh = Math.floor((session.meter_start_wh + session.meter_stop_wh) / 2);
  await charger.call('MeterValues', {
    connectorId: session.connector_id,
    transactionId: transaction_id,
    meterValue: [
      {
        timestamp: new Date(middle_ms).toISOString(),
        sampledValue: [
          { value: String(middle_wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
          { value: '11.0', measurand: 'Power.Active.Import', unit: 'kW' },
        ],
      },
    ],
  });
  await charger.call('StopTransaction', {
    transactionId: transaction_id,
    idTag: session.id_tag,
    meterStop: session.meter_stop_wh,
    timestamp: session.stop.toISOString(),
    reason: 'EVDisconnected',
  });
  return transaction_id;
}
