// The Flex Consumption plan and the function app: the custom handler runtime, the package read from
// blob storage through the app's identity, explicit HTTP concurrency, and the settings the handler
// reads. Optionally, App Service Authentication (Easy Auth) so approvers are known by identity.

@description('Function app name, globally unique (it becomes <name>.azurewebsites.net).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags applied to the plan and the app.')
param tags object

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

@description('Storage account holding the host state and the deployment container.')
param storageAccountName string

@description('URL of the blob container the deployment package is published to.')
param deploymentContainerUrl string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Memory of each instance in MB (512 about a quarter core, 2048 one core, 4096 two cores).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Most instances the app may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Concurrent HTTP requests one instance takes before the platform adds another.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int

@description('Instances of the http group kept running (billed) even with no traffic; 0 scales to zero.')
@minValue(0)
@maxValue(20)
param alwaysReadyInstances int

@description('DURABLE_TASK_SCHEDULER_CONNECTION_STRING for the handler.')
param schedulerConnectionString string

@description('SESSION_POOL_URL for the handler: the pool management endpoint.')
param sessionPoolUrl string

@description('APPROVAL_TIMEOUT for the handler, e.g. 24h, 90s or PT24H.')
param approvalTimeout string

@description('EXECUTION_TIMEOUT for the handler: the limit on one code execution (at most 220s).')
param executionTimeout string

@description('SESSION_POOL_API for the handler: the session pool API contract it speaks.')
param sessionPoolApi string

@description('Client id of an Entra app registration for Easy Auth; empty leaves Easy Auth off.')
param easyAuthClientId string

@description('Tenant of that app registration.')
param easyAuthTenantId string

// All HTTP triggers scale together as the 'http' group.
var alwaysReadyHttp = [
  {
    name: 'http'
    instanceCount: alwaysReadyInstances
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: (alwaysReadyInstances > 0) ? alwaysReadyHttp : []
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
          value: schedulerConnectionString
        }
        {
          name: 'SESSION_POOL_URL'
          value: sessionPoolUrl
        }
        {
          name: 'SESSION_POOL_API'
          value: sessionPoolApi
        }
        {
          name: 'APPROVAL_TIMEOUT'
          value: approvalTimeout
        }
        {
          name: 'EXECUTION_TIMEOUT'
          value: executionTimeout
        }
      ]
    }
  }
}

// Publishing goes through Entra ID (az CLI, azd); FTP and SCM basic credentials stay off.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

// Easy Auth validates Entra tokens and injects X-MS-CLIENT-PRINCIPAL-NAME/-ID, from which the
// handler records who approved. Anonymous requests still pass so function keys keep working; the
// handler decides whether an approval without a principal is accepted.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(easyAuthClientId)) {
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: easyAuthClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${easyAuthTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${easyAuthClientId}'
            easyAuthClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
