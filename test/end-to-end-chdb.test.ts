import { describe_end_to_end } from './end-to-end.js';

describe_end_to_end('embedded ClickHouse (chdb)', async () => ({}));
