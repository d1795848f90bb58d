// A small Grafana dashboard library in the style of grafonnet: constructors that return plain
// Grafana JSON objects, and `with*` mixins added with `+`. Only what the evrate dashboards use.
// grafonnet itself is not obtainable here; the JSON it produces follows Grafana's dashboard
// schema (schemaVersion 39) and the grafana-clickhouse-datasource plugin (v4) query model.
{
  // The data source every panel and variable is bound to; the provisioning file gives the
  // ClickHouse data source this uid, so the dashboards need no clicking after import.
  datasource:: {
    type: 'grafana-clickhouse-datasource',
    uid: 'evrate-clickhouse',
  },

  query:: {
    // A raw SQL target of the ClickHouse plugin. `format` follows the plugin backend's
    // sqlutil.FormatQueryOption: 0 time series (long frames are widened per label), 1 table.
    sql(sql, ref_id='A', format='table'):: {
      refId: ref_id,
      datasource: $.datasource,
      editorType: 'sql',
      queryType: if format == 'time_series' then 'timeSeries' else 'table',
      format: if format == 'time_series' then 0 else 1,
      rawSql: sql,
    },
  },

  threshold:: {
    // steps: [[value or null, color], ...] ascending; the first value is the base (null).
    steps(steps):: {
      mode: 'absolute',
      steps: [{ value: s[0], color: s[1] } for s in steps],
    },
  },

  panel:: {
    local base(type, title, targets, unit) = {
      type: type,
      title: title,
      datasource: $.datasource,
      targets: targets,
      fieldConfig: {
        defaults: { unit: unit },
        overrides: [],
      },
      options: {},
      // Width and height in grid units; `layout.grid` places the panel and gives it an id.
      gridPos: { w: 12, h: 8 },
    },

    timeseries(title, targets, unit='short', bars=false)::
      base('timeseries', title, targets, unit) + {
        fieldConfig+: {
          defaults+: {
            custom: {
              drawStyle: if bars then 'bars' else 'line',
              fillOpacity: if bars then 80 else 10,
              lineWidth: 1,
              showPoints: 'never',
              spanNulls: false,
            },
          },
        },
        options: {
          legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
          tooltip: { mode: 'multi', sort: 'desc' },
        },
      },

    stat(title, targets, unit='short')::
      base('stat', title, targets, unit) + {
        gridPos: { w: 6, h: 4 },
        options: {
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
          colorMode: 'value',
          graphMode: 'none',
          textMode: 'value_and_name',
          justifyMode: 'auto',
        },
      },

    table(title, targets, unit='short')::
      base('table', title, targets, unit) + {
        options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'] } },
      },

    // A weekday x hour grid drawn as a table whose cells are coloured by value: Grafana's
    // heatmap panel wants time buckets on the x axis, a pivoted table shows the week directly.
    heatmap_table(title, targets, unit='short')::
      self.table(title, targets, unit) + {
        fieldConfig+: {
          defaults+: {
            color: { mode: 'continuous-GrYlRd' },
            custom: { align: 'center', cellOptions: { type: 'color-background', mode: 'gradient' } },
          },
          overrides+: [{
            matcher: { id: 'byName', options: 'weekday' },
            properties: [
              { id: 'custom.cellOptions', value: { type: 'auto' } },
              { id: 'unit', value: 'string' },
            ],
          }],
        },
      },

    barchart(title, targets, unit='short', x_field=null)::
      base('barchart', title, targets, unit) + {
        options: {
          orientation: 'horizontal',
          showValue: 'auto',
          legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
          [if x_field != null then 'xField']: x_field,
        },
      },

    piechart(title, targets, unit='short')::
      base('piechart', title, targets, unit) + {
        options: {
          pieType: 'donut',
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: true },
          legend: { displayMode: 'table', placement: 'right', values: ['value', 'percent'] },
        },
      },

    withSize(w, h):: { gridPos: { w: w, h: h } },
    withDescription(text):: { description: text },
    withDecimals(n):: { fieldConfig+: { defaults+: { decimals: n } } },
    withMinMax(min, max):: { fieldConfig+: { defaults+: { min: min, max: max } } },
    withThresholds(steps):: {
      fieldConfig+: { defaults+: { thresholds: $.threshold.steps(steps), color: { mode: 'thresholds' } } },
    },
    // Unit (and optionally display name and decimals) for one field of a multi-field panel.
    withFieldOverride(name, unit, display_name=null, decimals=null):: {
      fieldConfig+: {
        overrides+: [{
          matcher: { id: 'byName', options: name },
          properties: [{ id: 'unit', value: unit }]
                      + (if display_name != null then [{ id: 'displayName', value: display_name }] else [])
                      + (if decimals != null then [{ id: 'decimals', value: decimals }] else []),
        }],
      },
    },
    // Readable names for fields, e.g. { occupied_pct: 'Occupied' }.
    withDisplayNames(names):: {
      fieldConfig+: {
        overrides+: [
          {
            matcher: { id: 'byName', options: field },
            properties: [{ id: 'displayName', value: names[field] }],
          }
          for field in std.objectFields(names)
        ],
      },
    },
    // The same, prepended so that a panel's own overrides (added later) win. Overrides for
    // fields a panel does not have are ignored by Grafana.
    withDefaultDisplayNames(names):: {
      fieldConfig+: {
        overrides: [
          {
            matcher: { id: 'byName', options: field },
            properties: [{ id: 'displayName', value: names[field] }],
          }
          for field in std.objectFields(names)
        ] + super.overrides,
      },
    },
    withStacking():: {
      fieldConfig+: { defaults+: { custom+: { stacking: { mode: 'normal', group: 'A' } } } },
    },
    withSort(field, desc=false):: { options+: { sortBy: [{ displayName: field, desc: desc }] } },
  },

  variable:: {
    local common(name, label) = {
      name: name,
      label: label,
      hide: 0,
      skipUrlSync: false,
    },

    // Values from a ClickHouse query (first column), refreshed when the time range changes.
    query(name, label, sql, multi=false, include_all=false)::
      common(name, label) + {
        type: 'query',
        datasource: $.datasource,
        query: sql,
        definition: sql,
        refresh: 2,
        sort: 1,
        multi: multi,
        includeAll: include_all,
        current: if include_all then { selected: true, text: ['All'], value: ['$__all'] } else {},
        options: [],
        regex: '',
      },

    custom(name, label, values, default)::
      common(name, label) + {
        type: 'custom',
        query: std.join(',', values),
        multi: false,
        includeAll: false,
        current: { selected: true, text: default, value: default },
        options: [
          { selected: v == default, text: v, value: v }
          for v in values
        ],
      },

    // A fixed value the viewer does not see, e.g. the database name.
    constant(name, value)::
      common(name, name) + {
        type: 'constant',
        hide: 2,
        query: value,
        current: { selected: true, text: value, value: value },
        options: [{ selected: true, text: value, value: value }],
      },
  },

  layout:: {
    // Places panels left to right on Grafana's 24-column grid, starting a new row when a panel
    // does not fit, and numbers them 1..n. Positions are computed, never written by hand, so
    // panels cannot overlap.
    grid(panels)::
      local place(state, panel) =
        local w = panel.gridPos.w;
        local h = panel.gridPos.h;
        local wrap = state.x + w > 24;
        local x = if wrap then 0 else state.x;
        local y = if wrap then state.y + state.row_h else state.y;
        local row_h = if wrap then h else std.max(state.row_h, h);
        {
          x: x + w,
          y: y,
          row_h: row_h,
          placed: state.placed + [panel { id: std.length(state.placed) + 1, gridPos: { x: x, y: y, w: w, h: h } }],
        };
      std.foldl(place, panels, { x: 0, y: 0, row_h: 0, placed: [] }).placed,
  },

  dashboard:: {
    new(uid, title, panels, variables, description='', time_from='now-7d', names={})::
      {
        uid: uid,
        title: title,
        description: description,
        tags: ['evrate'],
        editable: true,
        graphTooltip: 1,
        schemaVersion: 39,
        version: 1,
        refresh: '1m',
        timezone: 'browser',
        time: { from: time_from, to: 'now' },
        timepicker: { refresh_intervals: ['30s', '1m', '5m', '15m', '1h'] },
        templating: { list: variables },
        annotations: { list: [] },
        links: [{ type: 'dashboards', tags: ['evrate'], asDropdown: false, title: 'evrate' }],
        panels: $.layout.grid([p + $.panel.withDefaultDisplayNames(names) for p in panels]),
      },
  },
}
