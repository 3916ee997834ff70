// durable-azstorage on Azure: a storage account for the task hub (identity only, no shared keys), a
// user-assigned identity with the data roles the engine needs, and an Azure Container Apps
// environment running the worker image with KEDA queue scale rules. docs/deploy.md shows the commands.
//
//   az deployment group create -g my-rg -f infra/azure/main.bicep -p image=myregistry.azurecr.io/app:1
targetScope = 'resourceGroup'

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Prefix of resource names (lower-case letters and digits).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'durable'

@description('Worker image (the durable-azstorage image with your app in /app).')
param image string

@description('Task hub name; queue names are its lower-case form.')
param taskHubName string = 'MyHub'

@description('Partitions (control queues) of the task hub: at most this many workers do orchestration work.')
@minValue(1)
@maxValue(16)
param partitionCount int = 4

@description('Registry login server the image comes from, pulled with the same identity (empty: public image).')
param registryServer string = ''

@description('The app module and function that register orchestrators and activities.')
param appSpec string = 'app:register'

var storageName = take('${namePrefix}${uniqueString(resourceGroup().id)}', 24)
var hub = toLower(taskHubName)

// Built-in data roles: the engine reads and writes queues (control, work items), tables (History,
// Instances, Partitions) and blobs (large messages, the app lease). Contributor, not Owner: the
// engine never changes access control.
var roles = {
  queue: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  table: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  blob: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-worker'
  location: location
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // Accepted checkov findings (docs/deploy.md, "Validation"):
  // checkov:skip=CKV_AZURE_35: a Container Apps environment without a VNet has no fixed address to allow; use private endpoints with a VNet-integrated environment
  // checkov:skip=CKV_AZURE_59: as above: public network access stays on, but only Entra ID tokens are accepted (allowSharedKeyAccess false)
  // checkov:skip=CKV_AZURE_206: ZRS keeps three copies across zones; geo-replication is asynchronous and cannot fail a task hub over consistently
  // checkov:skip=CKV_AZURE_43: the name is computed (prefix + uniqueString, at most 24 characters), which checkov cannot evaluate
  name: storageName
  location: location
  sku: {
    name: 'Standard_ZRS'
  }
  kind: 'StorageV2'
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false // identity only: no account keys, no SAS signed with them
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in items(roles): {
    name: guid(storage.id, identity.id, role.value)
    scope: storage
    properties: {
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
    }
  }
]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource environment 'Microsoft.App/managedEnvironments@2025-07-01' = {
  name: '${namePrefix}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
    zoneRedundant: false
  }
}

// One scale rule for the work-item queue and one per control queue, all read with the identity.
var workItemRule = {
  name: 'work-items'
  azureQueue: {
    accountName: storage.name
    queueName: '${hub}-workitems'
    queueLength: 20
    identity: identity.id
  }
}
var controlRules = [
  for i in range(0, partitionCount): {
    name: 'control-${padLeft(string(i), 2, '0')}'
    azureQueue: {
      accountName: storage.name
      queueName: '${hub}-control-${padLeft(string(i), 2, '0')}'
      queueLength: 8
      identity: identity.id
    }
  }
]

resource worker 'Microsoft.App/containerApps@2025-07-01' = {
  name: '${namePrefix}-worker'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: environment.id
    configuration: {
      activeRevisionsMode: 'Single'
      registries: empty(registryServer) ? [] : [
        {
          server: registryServer
          identity: identity.id
        }
      ]
    }
    template: {
      // A stop releases partitions after running episodes checkpoint (--drain-timeout 60).
      terminationGracePeriodSeconds: 90
      containers: [
        {
          name: 'worker'
          image: image
          args: [
            'worker'
            '--app'
            appSpec
            '--task-hub-name'
            taskHubName
            '--partition-count'
            string(partitionCount)
            '--drain-timeout'
            '60'
          ]
          env: [
            { name: 'AzureWebJobsStorage__accountName', value: storage.name }
            { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
            { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
            { name: 'DURABLE_AZSTORAGE_HEALTH_PORT', value: '8080' }
            { name: 'DURABLE_AZSTORAGE_HEALTH_HOST', value: '0.0.0.0' }
          ]
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          probes: [
            {
              type: 'Startup'
              httpGet: { path: '/readyz', port: 8080 }
              periodSeconds: 2
              failureThreshold: 60
            }
            {
              type: 'Readiness'
              httpGet: { path: '/readyz', port: 8080 }
              periodSeconds: 5
              failureThreshold: 2
            }
            {
              type: 'Liveness'
              httpGet: { path: '/healthz', port: 8080 }
              periodSeconds: 15
              timeoutSeconds: 3
              failureThreshold: 4
            }
          ]
        }
      ]
      scale: {
        // Never below 1 (durable timers wait as invisible messages), never above the partition count.
        minReplicas: 1
        maxReplicas: partitionCount
        rules: concat([workItemRule], controlRules)
      }
    }
  }
  dependsOn: [
    roleAssignments
  ]
}

output storageAccountName string = storage.name
output identityClientId string = identity.properties.clientId
output identityResourceId string = identity.id
output workerAppName string = worker.name
