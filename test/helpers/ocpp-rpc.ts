import ocpp_rpc from 'ocpp-rpc';

// ocpp-rpc is CommonJS: its classes are read from the default export.
const { RPCClient } = ocpp_rpc;
export type RpcCharger = InstanceType<typeof RPCClient>;
type ClientOptions = ConstructorParameters<typeof RPCClient>[0];

/**
 * An independent charger for end-to-end tests: ocpp-rpc in strict mode (every CALL and answer
 * checked against the official schemas), without reconnecting, so a dropped connection fails the
 * test instead of being hidden. `ocpp_url` is the server's ".../{chargePointId}" URL.
 */
export async function connect_rpc_charger(
  ocpp_url: string,
  identity: string,
  protocol: 'ocpp1.6' | 'ocpp2.0.1',
): Promise<RpcCharger> {
  const client = new RPCClient({
    endpoint: ocpp_url.replace('/{chargePointId}', ''),
    identity,
    protocols: [protocol],
    strictMode: true,
    reconnect: false,
    callTimeoutMs: 15_000,
  } as ClientOptions);
  await client.connect();
  return client;
}
