/**
 * Prints the cluster variant of the schema (see CLUSTER.md):
 *   node dist/analytics/cluster-ddl.js --cluster evrate_cluster [--database evrate] [--raw-retention-days 0]
 */
import { parseArgs } from 'node:util';
import { cluster_ddl_script } from './cluster.js';

const { values } = parseArgs({
  options: {
    cluster: { type: 'string' },
    database: { type: 'string', default: 'evrate' },
    'zookeeper-prefix': { type: 'string' },
    'raw-retention-days': { type: 'string', default: '0' },
  },
});
if (values.cluster === undefined) {
  process.stderr.write('--cluster: required (the cluster name from remote_servers)\n');
  process.exit(2);
}
process.stdout.write(
  cluster_ddl_script({
    cluster: values.cluster,
    database: values.database,
    raw_retention_days: Number(values['raw-retention-days']),
    ...(values['zookeeper-prefix'] === undefined ? {} : { zookeeper_prefix: values['zookeeper-prefix'] }),
  }),
);
