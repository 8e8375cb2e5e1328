//! The resources deploy/ describes, read by a real Bicep parser (PyPI `pycep-parser`) since no
//! Bicep compiler is reachable offline: API versions, the identity's data roles and their scopes,
//! the function app's Flex settings, and the locked-down storage, scheduler and session pool.

#[path = "support/deploy_bicep.rs"]
mod bicep;
mod common;

use std::collections::BTreeSet;

use bicep::{one, parsed, resources, variable};

/// Resource types and the API versions the template is written against. Those named in the
/// reference notes for Flex, the scheduler, session pools and role assignments are used as given.
const API_VERSIONS: [(&str, &str); 14] = [
    ("Microsoft.App/sessionPools", "2025-01-01"),
    ("Microsoft.Authorization/roleAssignments", "2022-04-01"),
    ("Microsoft.DurableTask/schedulers", "2025-11-01"),
    ("Microsoft.DurableTask/schedulers/taskHubs", "2025-11-01"),
    ("Microsoft.Insights/components", "2020-02-02"),
    (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "2023-01-31",
    ),
    ("Microsoft.OperationalInsights/workspaces", "2023-09-01"),
    ("Microsoft.Storage/storageAccounts", "2023-05-01"),
    (
        "Microsoft.Storage/storageAccounts/blobServices",
        "2023-05-01",
    ),
    (
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "2023-05-01",
    ),
    ("Microsoft.Web/serverfarms", "2024-04-01"),
    ("Microsoft.Web/sites", "2024-04-01"),
    (
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
        "2024-04-01",
    ),
    ("Microsoft.Web/sites/config", "2024-04-01"),
];

/// Built-in role definition ids the identity is granted, and the resource type each is scoped to.
const ROLES: [(&str, &str, &str); 4] = [
    (
        "Storage Blob Data Owner",
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "Microsoft.Storage/storageAccounts",
    ),
    (
        "Monitoring Metrics Publisher",
        "3913510d-42f4-4e42-8a64-420c390055eb",
        "Microsoft.Insights/components",
    ),
    (
        "Durable Task Data Contributor",
        "0ad04412-c4d5-4796-b79c-f76d14c8d402",
        "Microsoft.DurableTask/schedulers/taskHubs",
    ),
    (
        "Azure ContainerApps Session Executor",
        "0fb8eba5-a2bb-4abe-b1c1-49dfad359bb0",
        "Microsoft.App/sessionPools",
    ),
];

/// App settings the handler and the host read.
const REQUIRED_SETTINGS: [&str; 10] = [
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPROVAL_TIMEOUT",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__credential",
    "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
    "EXECUTION_TIMEOUT",
    "SESSION_POOL_API",
    "SESSION_POOL_URL",
];

/// Settings Flex Consumption rejects or ignores (the runtime comes from functionAppConfig), and
/// the key-based storage connection that a no-shared-key account cannot serve.
const FORBIDDEN_SETTINGS: [&str; 8] = [
    "AzureWebJobsStorage",
    "ENABLE_ORYX_BUILD",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_RUN_FROM_PACKAGE",
];

#[test]
fn resources_use_the_expected_api_versions() {
    let Some(files) = parsed() else { return };

    let used: BTreeSet<(String, String)> = resources(&files)
        .iter()
        .map(|r| (r.kind.to_owned(), r.api_version.to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = API_VERSIONS
        .iter()
        .map(|(t, v)| ((*t).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(used, expected);
}

#[test]
fn the_identity_holds_exactly_its_data_roles_on_the_right_resources() {
    let Some(files) = parsed() else { return };
    let all = resources(&files);

    let mut granted = BTreeSet::new();
    for assignment in all
        .iter()
        .filter(|r| r.kind == "Microsoft.Authorization/roleAssignments")
    {
        let props = &assignment.body["properties"];
        assert_eq!(
            props["principalType"], "ServicePrincipal",
            "{}",
            assignment.symbol
        );

        let definition = &props["roleDefinitionId"]["function"];
        assert_eq!(definition["type"], "subscription_resource_id");
        assert_eq!(
            definition["parameters"]["resource_type"],
            "Microsoft.Authorization/roleDefinitions"
        );
        let role_var = definition["parameters"]["resource_name_1"]
            .as_str()
            .unwrap();
        let role_id = variable(&files, assignment.file, role_var)
            .as_str()
            .unwrap_or_else(|| panic!("{}: role id variable {role_var}", assignment.file));

        let scope = assignment.body["scope"].as_str().expect("scope symbol");
        let scoped = all
            .iter()
            .find(|r| r.file == assignment.file && r.symbol == scope)
            .unwrap_or_else(|| panic!("{}: scope {scope} is a resource", assignment.file));
        granted.insert((role_id.to_owned(), scoped.kind.to_owned()));
    }

    let expected: BTreeSet<(String, String)> = ROLES
        .iter()
        .map(|(_, id, scope)| ((*id).to_owned(), (*scope).to_owned()))
        .collect();
    assert_eq!(granted, expected, "roles by id: {ROLES:?}");
}

#[test]
fn the_function_app_runs_the_custom_runtime_on_flex_through_its_identity() {
    let Some(files) = parsed() else { return };
    let all = resources(&files);

    let plan = one(&all, "Microsoft.Web/serverfarms").body;
    assert_eq!(plan["sku"]["name"], "FC1");
    assert_eq!(plan["sku"]["tier"], "FlexConsumption");
    assert_eq!(plan["properties"]["reserved"], true, "Linux");

    let app = one(&all, "Microsoft.Web/sites");
    assert_eq!(app.body["kind"], "functionapp,linux");
    assert_eq!(app.body["identity"]["type"], "UserAssigned");
    let props = &app.body["properties"];
    assert_eq!(props["httpsOnly"], true);

    let config = &props["functionAppConfig"];
    assert_eq!(config["runtime"]["name"], "custom");
    assert_eq!(config["runtime"]["version"], "1.0");
    let storage = &config["deployment"]["storage"];
    assert_eq!(storage["type"], "blobContainer");
    assert_eq!(storage["authentication"]["type"], "UserAssignedIdentity");

    let scale = &config["scaleAndConcurrency"];
    assert_eq!(scale["instanceMemoryMB"], "instanceMemoryMB");
    assert_eq!(
        scale["triggers"]["http"]["perInstanceConcurrency"],
        "httpPerInstanceConcurrency"
    );
    let always_ready = &scale["alwaysReady"]["operator"]["operands"];
    let groups = variable(
        &files,
        app.file,
        always_ready["true_value"].as_str().unwrap(),
    );
    assert_eq!(
        groups[0]["name"], "http",
        "always-ready applies to the http group"
    );
    assert_eq!(groups[0]["instanceCount"], "alwaysReadyInstances");

    let settings: BTreeSet<&str> = props["siteConfig"]["appSettings"]
        .as_array()
        .expect("appSettings")
        .iter()
        .map(|s| s["name"].as_str().expect("setting name"))
        .collect();
    for name in REQUIRED_SETTINGS {
        assert!(settings.contains(name), "missing app setting {name}");
    }
    for name in FORBIDDEN_SETTINGS {
        assert!(!settings.contains(name), "{name} must not be set on Flex");
    }
}

#[test]
fn storage_scheduler_and_pool_are_locked_down_and_parameterised() {
    let Some(files) = parsed() else { return };
    let all = resources(&files);

    let account = &one(&all, "Microsoft.Storage/storageAccounts").body["properties"];
    assert_eq!(account["allowSharedKeyAccess"], false);
    assert_eq!(account["allowBlobPublicAccess"], false);
    one(
        &all,
        "Microsoft.Storage/storageAccounts/blobServices/containers",
    );

    let scheduler = one(&all, "Microsoft.DurableTask/schedulers");
    assert_eq!(
        scheduler.body["properties"]["ipAllowlist"], "ipAllowlist",
        "the allow-list is a parameter"
    );
    let allowlist = &files[scheduler.file]["parameters"]["ipAllowlist"];
    assert!(
        allowlist["decorators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["type"] == "min_length" && d["argument"] == 1),
        "an empty allow-list would deny every caller"
    );

    let pool = one(&all, "Microsoft.App/sessionPools");
    let props = &pool.body["properties"];
    assert_eq!(props["containerType"], "PythonLTS");
    assert_eq!(props["poolManagementType"], "Dynamic");
    assert_eq!(
        props["sessionNetworkConfiguration"]["status"],
        "EgressDisabled"
    );
    assert_eq!(
        props["scaleConfiguration"]["maxConcurrentSessions"],
        "maxConcurrentSessions"
    );
    let lifecycle = &props["dynamicPoolConfiguration"]["lifecycleConfiguration"];
    assert_eq!(lifecycle["lifecycleType"], "Timed");
    assert_eq!(
        lifecycle["cooldownPeriodInSeconds"],
        "cooldownPeriodInSeconds"
    );
}

#[test]
fn easy_auth_is_optional_and_leaves_function_keys_working() {
    let Some(files) = parsed() else { return };
    let all = resources(&files);

    let auth = one(&all, "Microsoft.Web/sites/config");
    assert_eq!(auth.body["name"], "authsettingsV2");
    let condition = auth
        .condition
        .expect("Easy Auth is deployed only when configured");
    assert_eq!(condition["operator"]["type"], "not");
    assert_eq!(
        condition["operator"]["operands"]["bool_value"]["function"]["parameters"]["item_to_test"],
        "easyAuthClientId"
    );

    let props = &auth.body["properties"];
    assert_eq!(props["globalValidation"]["requireAuthentication"], false);
    assert_eq!(
        props["globalValidation"]["unauthenticatedClientAction"], "AllowAnonymous",
        "requests with only a function key still reach the handler"
    );
    let aad = &props["identityProviders"]["azureActiveDirectory"];
    assert_eq!(aad["enabled"], true);
    assert_eq!(aad["registration"]["clientId"], "easyAuthClientId");
}
