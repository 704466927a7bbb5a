-- collections.sql: membership rows of ONE collection for the co-management dashboard.
--
-- Reads (SELECT only; it never writes): v_FullCollectionMembership and v_Collection.
-- The dashboard runs it once per collection its configuration names (the collection filter,
-- the auto-enrollment collection, the workload pilot collections), passing the collection ID
-- as the bound parameter collection_id.
--
-- CSV export for a folder source (collections.csv beside devices.csv), by hand: replace the
-- parameter with a quoted ID, or the whole condition with
-- fcm.CollectionID IN ('SMS00001', 'CAS00100', ...) to export every collection the
-- configuration names in one go, then save the result as for devices.sql (SSMS: Save
-- Results As; PowerShell: Invoke-Sqlcmd ... | Select-Object ResourceID, CollectionID,
-- CollectionName | Export-Csv .\PS1\collections.csv -NoTypeInformation -Encoding UTF8).
SELECT
    fcm.ResourceID,
    fcm.CollectionID,
    c.Name AS CollectionName
FROM v_FullCollectionMembership fcm
JOIN v_Collection c
    ON c.CollectionID = fcm.CollectionID
WHERE fcm.CollectionID = :collection_id
ORDER BY fcm.ResourceID;
