#!/usr/bin/env bash
# Regenerates the bundled sample month (seeded: the same files every time).
#   bash sample_data/make.sh
# Layout: sample_data/<league_code>/<YYYY-MM>/<files>, as `settle demo` reads it.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf 150300 150600 150700
s() { settle sample "$@"; }
# 呼伦贝尔市: May (EMS, ZTO, YTO) then June, where some May waybills are claimed again.
s --league 150700 --month 2025-05 --rows 500 --seed 11 --faults 0.01 --companies EMS,ZTO,YTO \
  -o 150700/2025-05/ems_zto_yto_2025-05.csv
s --league 150700 --month 2025-06 --rows 900 --seed 12 --faults 0.01 --companies ZTO,YTO,STO \
  --reclaim 150700/2025-05/ems_zto_yto_2025-05.csv --reclaim-share 0.01 -o 150700/2025-06/zto_yto_sto.csv
s --league 150700 --month 2025-06 --rows 600 --seed 13 --faults 0.01 --companies EMS \
  --format gbk -o 150700/2025-06/ems_gbk.csv
s --league 150700 --month 2025-06 --rows 300 --seed 14 --faults 0.01 --companies JD,SF \
  -o 150700/2025-06/jd_sf.xlsx
# 鄂尔多斯市 requires proof of delivery (NO_PROOF).
s --league 150600 --month 2025-06 --rows 700 --seed 21 --faults 0.01 --companies YUNDA,JT,DBL \
  --format gbk -o 150600/2025-06/yunda_jt_dbl_gbk.csv
# 乌海市 renewed its policy three days late: 2025-06-06..08 have none (NO_POLICY).
s --league 150300 --month 2025-06 --rows 300 --seed 31 --faults 0.01 -o 150300/2025-06/all_companies.parquet
