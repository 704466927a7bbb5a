-- devices.sql: one row per device for the co-management dashboard (the export contract).
--
-- Reads (SELECT only; it never writes): v_R_System, v_GS_OPERATING_SYSTEM (the newest
-- hardware-inventory row per device), v_ClientCoManagementState and v_CH_ClientSummary.
-- Obsolete records are left out; records whose Obsolete0 is NULL (discovery only) are kept.
-- Devices with no inventory, client-health or co-management row are kept (LEFT JOINs): their
-- values from those views come back NULL, which the dashboard reads as unknown.
--
-- Plain SQL that runs unchanged on SQL Server and on SQLite (the test replicas): views are
-- named without a schema prefix, so run it in the site database (CM_<site code>) as a login
-- whose default schema is dbo.
--
-- Values are returned as stored, never converted (no CAST or CONVERT): on SQL Server one
-- value that does not convert fails the whole statement. The dashboard reads them as it reads
-- a CSV export, and a bad value drops that one row, with a warning. Build01 and BuildNumber0
-- are both text, so COALESCE converts nothing either.
--
-- CSV export for a folder source (one folder per site, devices.csv beside collections.csv):
--   SSMS: run this file in the CM_<site code> database, then right-click the grid > Save
--         Results As > devices.csv. Turn on Tools > Options > Query Results > SQL Server >
--         Results to Grid > "Quote strings containing list separators when saving .csv
--         results" first, or a name with a comma shifts the columns.
--   PowerShell (SqlServer module): dates must stay ISO, not the culture's short format, so
--   format them before Export-Csv:
--     Invoke-Sqlcmd -ServerInstance SQL01 -Database CM_PS1 -InputFile .\devices.sql `
--         -QueryTimeout 600 |
--       Select-Object -Property * -ExcludeProperty ItemArray, Table, RowError, RowState,
--         HasErrors |
--       ForEach-Object { foreach ($p in $_.PSObject.Properties) {
--         if ($p.Value -is [datetime]) { $p.Value = $p.Value.ToString('yyyy-MM-dd HH:mm:ss.fff') }
--       } ; $_ } |
--       Export-Csv .\PS1\devices.csv -NoTypeInformation -Encoding UTF8
WITH os_latest AS (
    SELECT
        os.ResourceID,
        os.ProductType0,
        os.BuildNumber0,
        ROW_NUMBER() OVER (PARTITION BY os.ResourceID ORDER BY os.TimeStamp DESC) AS RowNumber
    FROM v_GS_OPERATING_SYSTEM os
)
SELECT
    s.ResourceID AS ResourceID,
    s.Name0 AS Name,
    s.Resource_Domain_OR_Workgr0 AS Domain,
    s.Operating_System_Name_and0 AS OperatingSystem,
    COALESCE(s.Build01, osl.BuildNumber0) AS Build,
    osl.ProductType0 AS ProductType,
    s.Client0 AS ClientInstalled,
    s.Client_Version0 AS ClientVersion,
    ch.ClientActiveStatus AS ClientActive,
    ch.LastPolicyRequest AS LastPolicyRequest,
    ch.LastActiveTime AS LastActiveTime,
    s.AADDeviceID AS AADDeviceID,
    cm.HybridAADJoined AS HybridAADJoined,
    cm.AADJoined AS AADJoined,
    cm.MDMEnrolled AS MDMEnrolled,
    cm.ComgmtPolicyPresent AS ComgmtPolicyPresent,
    cm.MDMProvisioned AS MDMProvisioned,
    cm.EnrollmentScheduled AS EnrollmentScheduled,
    cm.PendingLogon AS PendingLogon,
    cm.EnrollmentFailed AS EnrollmentFailed,
    cm.EnrollmentStatusCode AS EnrollmentStatusCode,
    cm.EnrollmentErrorDetail AS EnrollmentErrorDetail,
    cm.MDMWorkloads AS MDMWorkloads
FROM v_R_System s
LEFT JOIN os_latest osl
    ON osl.ResourceID = s.ResourceID AND osl.RowNumber = 1
LEFT JOIN v_ClientCoManagementState cm
    ON cm.ResourceID = s.ResourceID
LEFT JOIN v_CH_ClientSummary ch
    ON ch.ResourceID = s.ResourceID
WHERE COALESCE(s.Obsolete0, 0) <> 1
ORDER BY s.ResourceID;
