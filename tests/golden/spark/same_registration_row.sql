WITH `r1` AS (
  SELECT
    `t1`.`contactid` AS `k`
  FROM `registration` AS `t1`
  WHERE
    NOT `t1`.`contactid` IS NULL
    AND (
      `t1`.`checkedin` = TRUE
      AND `t1`.`eventid` IN (
        SELECT
          `t2`.`eventid`
        FROM `event` AS `t2`
        WHERE
          LOWER(TRANSLATE(`t2`.`category`, 'Σİ', 'σi')) = LOWER(TRANSLATE('webinar', 'Σİ', 'σi'))
      )
    )
)
SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    `t0`.`contactid` IN (
      SELECT
        `k`
      FROM `r1`
    )
  )
ORDER BY
  `t0`.`contactid`
