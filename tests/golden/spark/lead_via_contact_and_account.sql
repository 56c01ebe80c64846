SELECT
  `t0`.`leadid`
FROM `lead` AS `t0`
WHERE
  (
    LOWER(TRANSLATE(`t0`.`subject`, 'Σİ', 'σi')) LIKE LOWER(TRANSLATE('%demo%', 'Σİ', 'σi')) ESCAPE '!'
    AND `t0`.`parentaccountid` IN (
      SELECT
        `t1`.`accountid`
      FROM `account` AS `t1`
      WHERE
        `t1`.`country` <> ''
    )
  )
ORDER BY
  `t0`.`leadid`
